"""Governance from the shell: approval tickets, self-approval, racing approvers, expiry,
tamper-evident audit log and read-only mode, all through the installed `bunsui` script
against a real SQLite file."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.governance.audit import entry_hash
from tests.conftest import etl_pipeline
from tests.e2e.test_cli import BUNSUI, Cli

OS_USER = getpass.getuser()  # operator + approver under the shipped policy
AGENT = ("--actor", "ai-agent")
TICKET_ID = re.compile(r"^tkt-[0-9a-f]+$")
CONTESTED = {"CONFLICT", "INVALID_TRANSITION"}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


@pytest.fixture
def failed(cli: Cli, tmp_path: Path) -> str:
    """A session of the etl pipeline whose transform job ran out of memory."""
    session = cli.json("pipeline", "run", etl_pipeline(tmp_path), "--wait", expect=10)
    assert session["failed_jobs"] == ["transform"]
    return session["session_id"]


@contextmanager
def database(cli: Cli) -> Iterator[sqlite3.Connection]:
    """The home's SQLite file opened directly, as someone with file access would."""
    db = sqlite3.connect(cli.home / "bunsui.db", isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def rerun_request(session_id: str, *extra: str) -> tuple[str, ...]:
    return ("job", "rerun", "transform", "--session-id", session_id, "--skip-successful", *extra)


def request_ticket(cli: Cli, session_id: str, *extra: str) -> dict[str, Any]:
    """The agent asks for a rerun and gets a ticket (exit 6) instead of a session."""
    return cli.json(*AGENT, *rerun_request(session_id, *extra), expect=6)


def reruns_of(cli: Cli, session_id: str) -> list[str]:
    """Sessions created as reruns of `session_id` (directly or via other reruns)."""
    with database(cli) as db:
        rows = db.execute(
            "SELECT session_id FROM sessions WHERE root_session_id = ? "
            "OR json_extract(body, '$.parent_session_id') = ?",
            (session_id, session_id),
        ).fetchall()
    return [r[0] for r in rows]


def audit_entries(cli: Cli) -> list[dict[str, Any]]:
    """`audit export`: one JSON object per line."""
    result = cli.run("audit", "export")
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class TestAgentRequests:
    def test_agent_rerun_becomes_a_ticket_bound_to_its_exact_arguments(self, cli, failed):
        """The agent's rerun exits 6 with a pending ticket; the identical request returns the
        same ticket, a changed argument a new one, and nothing runs before approval."""
        before = datetime.now(UTC)
        first = request_ticket(cli, failed)
        ticket_id = first["ticket_id"]
        assert TICKET_ID.match(ticket_id)
        assert first == {
            "status": "pending_approval",
            "ticket_id": ticket_id,
            "action": "job:rerun",
            "arguments": {
                "idempotency_key": None,
                "recovery_action": None,
                "error_id": None,
                "wait": False,
                "job_id": "transform",
                "session_id": failed,
                "skip_successful": True,
                "batch_size": None,
            },
            "requested_by": "ai-agent",
            "rule": first["rule"],
            "expires_at": first["expires_at"],
            "approve_command": f"bunsui approval approve {ticket_id}",
            "resource_uri": f"bunsui://tickets/{ticket_id}",
            "created": True,
            "preview": first["preview"],
            "preview_hash": first["preview_hash"],
        }
        preview = first["preview"]
        assert preview["summary"].startswith(f"job:rerun transform @ {failed}: runs ")
        assert (preview["effect"]["jobs_to_run"], preview["effect"]["skipped_jobs"]) == (
            ["transform", "load"],
            ["extract"],
        )
        canonical = json.dumps(preview, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert first["preview_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert "approval_required 'job:rerun'" in first["rule"]
        deadline = parse_time(first["expires_at"])
        assert before + timedelta(hours=23) < deadline < before + timedelta(hours=25)

        again = request_ticket(cli, failed)
        assert again == {**first, "created": False}

        changed = request_ticket(cli, failed, "--batch-size", "10")
        assert changed["ticket_id"] != ticket_id
        assert changed["created"] is True
        assert changed["arguments"] == {**first["arguments"], "batch_size": 10}

        pending = cli.json("approval", "list", "--status", "pending")["tickets"]
        assert sorted(t["ticket_id"] for t in pending) == sorted([ticket_id, changed["ticket_id"]])
        assert {t["requested_by"] for t in pending} == {"ai-agent"}
        assert reruns_of(cli, failed) == []
        assert [s["session_id"] for s in cli.json("session", "list")["sessions"]] == [failed]


class TestApproval:
    def test_agent_cannot_approve_and_human_approval_executes_once(self, cli, failed):
        """The agent is denied (exit 5); the OS user's printed approve command runs the rerun
        once as the agent's call with the approver recorded; approving again exits 4."""
        ticket = request_ticket(cli, failed, "--batch-size", "10")
        ticket_id = ticket["ticket_id"]

        denied = cli.json(*AGENT, "approval", "approve", ticket_id, expect=5)["error"]
        assert denied["code"] == "PERMISSION_DENIED"
        assert "approval:approve" in denied["details"]["rule"]
        assert cli.json("approval", "show", ticket_id)["status"] == "pending"
        assert reruns_of(cli, failed) == []

        words = shlex.split(ticket["approve_command"])
        assert words[0] == "bunsui"
        executed = cli.json(*words[1:])
        assert executed["status"] == "executed"
        assert executed["decided_by"] == OS_USER
        assert executed["requested_by"] == "ai-agent"
        assert executed["error"] is None
        rerun_id = executed["result"]["session_id"]
        assert executed["result"]["original_session_id"] == failed
        assert reruns_of(cli, failed) == [rerun_id]

        watched = cli.run("session", "watch", rerun_id, "--interval", "0.2")
        assert watched.returncode == 0, watched.stdout + watched.stderr
        session = json.loads(watched.stdout)
        assert session["parent_session_id"] == failed
        assert session["requested_by"] == "ai-agent"
        assert {j["job_id"]: j["status"] for j in session["jobs"]} == {
            "extract": "skipped",
            "transform": "completed",
            "load": "completed",
        }

        entries = [e for e in audit_entries(cli) if e["ticket_id"] == ticket_id]
        assert [(e["actor"], e["action"], e["result"]) for e in entries] == [
            ("ai-agent", "job:rerun", "pending_approval"),
            (OS_USER, "job:rerun", "approved"),
            ("ai-agent", "job:rerun", "executed"),
        ]
        assert entries[2]["approval"] == {
            "required": True,
            "approved_by": OS_USER,
            "approved_at": executed["decided_at"],
        }

        again = cli.json("approval", "approve", ticket_id, expect=4)["error"]
        assert again["code"] == "INVALID_TRANSITION"
        assert again["details"] == {"ticket_id": ticket_id, "status": "executed"}
        assert reruns_of(cli, failed) == [rerun_id]

    def test_a_human_cannot_approve_their_own_request(self, cli, failed, tmp_path):
        """Under a policy where alice (human) needs approval to rerun and may approve, her own
        ticket is refused to her: PERMISSION_DENIED, reason self_approval, nothing runs."""
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "operator2:\n"
            "  kind: human\n"
            '  allowed_actions: ["approval:*", "session:*", "job:list", "audit:*"]\n'
            '  approval_required: ["job:rerun"]\n'
            "actors:\n"
            "  alice: operator2\n"
        )
        alice = ("--policy", str(policy), "--actor", "alice")
        ticket = cli.json(*alice, *rerun_request(failed), expect=6)
        assert ticket["requested_by"] == "alice"
        assert "operator2.approval_required 'job:rerun'" in ticket["rule"]

        error = cli.json(*alice, "approval", "approve", ticket["ticket_id"], expect=5)["error"]
        assert error["code"] == "PERMISSION_DENIED"
        assert error["details"] == {
            "ticket_id": ticket["ticket_id"],
            "status": "pending",
            "reason": "self_approval",
        }
        shown = cli.json(*alice, "approval", "show", ticket["ticket_id"])
        assert (shown["status"], shown["decided_by"]) == ("pending", None)
        assert reruns_of(cli, failed) == []

    def test_twenty_racing_approvers_execute_the_ticket_once(self, cli, failed):
        """20 approve processes started together: one exits 0, the rest a coded CONFLICT or
        INVALID_TRANSITION (exit 4, no traceback); one rerun session, one executed entry."""
        ticket_id = request_ticket(cli, failed, "--batch-size", "10")["ticket_id"]
        env = {k: v for k, v in os.environ.items() if k != "BUNSUI_FORMAT"}
        env["BUNSUI_HOME"] = str(cli.home)
        argv = [BUNSUI, "--format", "json", "approval", "approve", ticket_id]
        processes = [
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(20)
        ]
        results = []
        for process in processes:
            stdout, stderr = process.communicate(timeout=60)
            results.append((process.returncode, stdout, stderr))

        winners = [r for r in results if r[0] == 0]
        losers = [r for r in results if r[0] != 0]
        assert len(winners) == 1, [r[0] for r in results]
        for code, stdout, stderr in losers:
            assert "Traceback" not in stderr, stderr
            error = json.loads(stdout)["error"]
            assert error["code"] in CONTESTED, (code, error)
            assert code == 4
            assert error["details"]["ticket_id"] == ticket_id
        executed = json.loads(winners[0][1])
        assert executed["status"] == "executed"

        [rerun_id] = reruns_of(cli, failed)
        assert executed["result"]["session_id"] == rerun_id
        assert cli.json("approval", "show", ticket_id)["status"] == "executed"
        entries = audit_entries(cli)
        done = [e for e in entries if e["ticket_id"] == ticket_id and e["result"] == "executed"]
        assert len(done) == 1
        assert done[0]["approval"]["approved_by"] == OS_USER
        failures = [
            e for e in entries if e["action"] == "approval:approve" and e["result"] == "failed"
        ]
        assert sorted(e["error_code"] for e in failures) == sorted(
            json.loads(r[1])["error"]["code"] for r in losers
        )
        verified = cli.json("audit", "verify")
        assert (verified["ok"], verified["entries"]) == (True, len(entries) + 1)
        watched = cli.run("session", "watch", rerun_id, "--interval", "0.2")
        assert watched.returncode == 0, watched.stdout + watched.stderr

    def test_expired_ticket_cannot_be_approved(self, cli, failed):
        """A ticket whose deadline passed: approving exits 4 TICKET_EXPIRED and runs nothing;
        `approval show` says expired and the same request now gets a fresh ticket."""
        ticket_id = request_ticket(cli, failed)["ticket_id"]
        with database(cli) as db:
            changed = db.execute(
                "UPDATE tickets SET body = json_set(body, '$.expires_at', ?) WHERE ticket_id = ?",
                ("2000-01-01T00:00:00.000000Z", ticket_id),
            ).rowcount
        assert changed == 1

        error = cli.json("approval", "approve", ticket_id, expect=4)["error"]
        assert error["code"] == "TICKET_EXPIRED"
        assert error["details"]["ticket_id"] == ticket_id
        shown = cli.json("approval", "show", ticket_id)
        assert (shown["status"], shown["decided_by"], shown["result"]) == ("expired", None, None)
        assert reruns_of(cli, failed) == []

        fresh = request_ticket(cli, failed)
        assert fresh["created"] is True
        assert fresh["ticket_id"] != ticket_id

    def test_rejected_ticket_never_runs_and_agent_cancels_its_own(self, cli, failed):
        """A rejected ticket cannot be approved later; the requesting agent may cancel its own
        pending ticket (and may not reject); neither ever creates a session."""
        rejected_id = request_ticket(cli, failed)["ticket_id"]
        refused = cli.json(*AGENT, "approval", "reject", rejected_id, expect=5)["error"]
        assert refused["code"] == "PERMISSION_DENIED"
        rejected = cli.json("approval", "reject", rejected_id, "--reason", "not tonight")
        assert (rejected["status"], rejected["decided_by"], rejected["reason"]) == (
            "rejected",
            OS_USER,
            "not tonight",
        )
        late = cli.json("approval", "approve", rejected_id, expect=4)["error"]
        assert late["code"] == "INVALID_TRANSITION"
        assert late["details"]["status"] == "rejected"

        cancelled_id = request_ticket(cli, failed, "--batch-size", "10")["ticket_id"]
        cancelled = cli.json(*AGENT, "approval", "cancel", cancelled_id)
        assert (cancelled["status"], cancelled["decided_by"]) == ("cancelled", "ai-agent")
        assert cli.json("approval", "approve", cancelled_id, expect=4)["error"]["details"] == {
            "ticket_id": cancelled_id,
            "status": "cancelled",
        }

        assert cli.json("approval", "list", "--status", "pending")["tickets"] == []
        assert cli.json("approval", "show", rejected_id)["status"] == "rejected"
        assert reruns_of(cli, failed) == []


@pytest.fixture(scope="module")
def audited_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database whose audit log holds a few varied calls, checkpointed into one file."""
    cli = Cli(tmp_path_factory.mktemp("audited") / "home")
    cli.json("session", "list")
    learn = ("--error-code", "LOCAL_MEMORY_LIMIT", "--action", "increase_memory")
    cli.json(*AGENT, "error", "learn", *learn, "--outcome", "success", expect=6)
    cli.json(*AGENT, "approval", "approve", "tkt-000000000000", expect=5)
    cli.json("session", "describe", "ses-nope", expect=3)
    cli.json("policy", "check", "--actor", "ai-agent", "--action", "job:rerun")
    with database(cli) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert db.execute("SELECT COUNT(*) FROM audit").fetchone() == (5,)
    return cli.home / "bunsui.db"


def copy_home(audited_db: Path, tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "home")
    cli.home.mkdir()
    shutil.copyfile(audited_db, cli.home / "bunsui.db")
    return cli


def tamper(cli: Cli, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Edit the audit table as an attacker with the file would: drop the guard triggers."""
    with database(cli) as db:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
        for sql, params in statements:
            assert db.execute(sql, params).rowcount >= 1, sql


def broken(cli: Cli, *args: str) -> dict[str, Any]:
    error = cli.json("audit", "verify", *args, expect=13)["error"]
    assert error["code"] == "AUDIT_CHAIN_BROKEN"
    return error


def rehash(body: str, **changes: Any) -> str:
    """An entry edited and given a correct hash of its own (the chain still breaks next)."""
    fields = {**json.loads(body), **changes}
    fields["hash"] = entry_hash(fields)
    return json.dumps(fields)


class TestAuditLog:
    def test_clean_log_verifies_and_exports_json_lines(self, audited_db, tmp_path):
        """An untouched log verifies (exit 0); export prints one chained object per line."""
        cli = copy_home(audited_db, tmp_path)
        verified = cli.json("audit", "verify")
        assert (verified["ok"], verified["entries"]) == (True, 5)
        lines = cli.run("audit", "export").stdout.splitlines()
        entries = [json.loads(line) for line in lines]
        assert [e["seq"] for e in entries] == list(range(1, 7))
        previous = "0" * 64
        for entry in entries:
            assert entry["prev_hash"] == previous
            previous = entry["hash"]
        assert verified["head"] == f"5:{entries[4]['hash']}"
        assert [(e["actor"], e["action"], e["result"]) for e in entries[:5]] == [
            (OS_USER, "session:list", "allowed"),
            ("ai-agent", "error:learn", "pending_approval"),
            ("ai-agent", "approval:approve", "denied"),
            (OS_USER, "session:describe", "failed"),
            (OS_USER, "policy:check", "allowed"),
        ]
        assert entries[5]["action"] == "audit:verify"

    @pytest.mark.parametrize(
        ("case", "bad_seq", "problem"),
        [
            ("edit_actor", 2, "edited"),
            # The body is rehashed, but the indexed actor column still says who acted.
            ("edit_and_rehash", 2, "indexed actor"),
            ("delete_middle", 3, "missing"),
            ("swap_bodies", 2, "out of order"),
            ("garbage_body", 4, "missing"),
        ],
    )
    def test_tampering_breaks_the_chain_at_that_entry(
        self, audited_db, tmp_path, case, bad_seq, problem
    ):
        """Each kind of edit on the real file makes `audit verify` exit 13 naming the first
        bad entry."""
        cli = copy_home(audited_db, tmp_path)
        with database(cli) as db:
            bodies = dict(db.execute("SELECT seq, body FROM audit").fetchall())
        edits = {
            "edit_actor": [
                (
                    "UPDATE audit SET actor = 'nobody', "
                    "body = json_set(body, '$.actor', 'nobody') WHERE seq = 2",
                    (),
                )
            ],
            "edit_and_rehash": [
                (
                    "UPDATE audit SET body = ?, hash = json_extract(?, '$.hash') WHERE seq = 2",
                    (rehash(bodies[2], actor="nobody"),) * 2,
                )
            ],
            "delete_middle": [("DELETE FROM audit WHERE seq = 3", ())],
            "swap_bodies": [
                ("UPDATE audit SET body = ? WHERE seq = 2", (bodies[4],)),
                ("UPDATE audit SET body = ? WHERE seq = 4", (bodies[2],)),
            ],
            "garbage_body": [("UPDATE audit SET body = 'not json' WHERE seq = 4", ())],
        }
        tamper(cli, *edits[case])
        error = broken(cli)
        assert error["details"]["seq"] == bad_seq
        assert problem in error["details"]["problem"]
        assert error["details"]["verified"] == bad_seq - 1
        assert f"entry {bad_seq}" in error["message"]

    def test_cut_tail_is_caught_only_with_the_expected_head(self, audited_db, tmp_path):
        """Deleting the newest entries leaves a chain that holds, so plain verify passes;
        verify --expect-head with a head kept from before catches the cut (exit 13). A log
        that merely grew since that head still verifies."""
        cli = copy_home(audited_db, tmp_path)
        kept = cli.json("audit", "head")
        assert kept["seq"] == 5
        assert kept["head"] == f"5:{kept['hash']}"
        cli.json("session", "list")
        grown = cli.json("audit", "verify", "--expect-head", kept["head"])
        assert (grown["ok"], grown["entries"]) == (True, 7)

        tamper(cli, ("DELETE FROM audit WHERE seq >= 4", ()))
        error = broken(cli, "--expect-head", kept["head"])
        assert error["details"] == {"seq": 4, "problem": "truncated"}
        assert "cut" in error["message"]
        # The survivors plus the failed verify's own entry form a chain that holds.
        assert cli.json("audit", "verify")["entries"] == 4

    def test_cut_tail_followed_by_new_entries_is_still_caught(self, audited_db, tmp_path):
        """Cutting the tail and then making more calls (so the log is longer than the kept
        head again) must still fail against the kept head: entry 5 is not the one kept."""
        cli = copy_home(audited_db, tmp_path)
        kept = cli.json("audit", "head")["head"]
        tamper(cli, ("DELETE FROM audit WHERE seq >= 4", ()))
        for _ in range(3):
            cli.json("session", "list")
        broken(cli, "--expect-head", kept)


def checkpointed_hash(cli: Cli) -> str:
    """sha256 of the database file once the WAL is folded in (so the file is the state)."""
    with database(cli) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return hashlib.sha256((cli.home / "bunsui.db").read_bytes()).hexdigest()


def stored_head(cli: Cli) -> str:
    """SEQ:HASH of the newest audit row, read straight from the file."""
    with database(cli) as db:
        seq, digest = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return f"{seq}:{digest}"


class TestReadOnly:
    def test_read_only_refuses_writes_serves_reads_and_writes_nothing(self, cli, failed, tmp_path):
        """--read-only and BUNSUI_READ_ONLY=1: writes (even an approval, even an agent's
        request that would only make a ticket) exit 5 READ_ONLY, reads work, and the database
        file and audit head are byte-for-byte unchanged."""
        ticket_id = request_ticket(cli, failed, "--batch-size", "10")["ticket_id"]
        before = checkpointed_hash(cli)
        head = stored_head(cli)
        modes = {
            "flag": lambda *args, expect=0: cli.json("--read-only", *args, expect=expect),
            "environment": lambda *args, expect=0: cli.json(
                *args, expect=expect, env={"BUNSUI_READ_ONLY": "1"}
            ),
        }
        run = ("pipeline:run", ("pipeline", "run", etl_pipeline(tmp_path), "--wait"))
        approve = ("approval:approve", ("approval", "approve", ticket_id))
        writes = {
            "flag": [
                run,
                ("job:rerun", (*AGENT, *rerun_request(failed))),
                approve,
                ("approval:reject", ("approval", "reject", ticket_id)),
            ],
            "environment": [run, approve],
        }
        for how, ro in modes.items():
            for action, argv in writes[how]:
                error = ro(*argv, expect=5)["error"]
                assert (error["code"], error["details"]) == ("READ_ONLY", {"action": action}), how
            sessions = ro("session", "list")["sessions"]
            assert [s["session_id"] for s in sessions] == [failed]
            assert ro("audit", "head")["head"] == head

        ro = modes["flag"]
        [error] = ro("error", "analyze", "--session-id", failed)["errors"]
        assert error["error_code"] == "LOCAL_MEMORY_LIMIT"
        plans = ro("recovery", "suggest", "--session-id", failed)["recovery_plans"]
        assert plans[0]["action"] == "increase_memory"
        assert ro("approval", "show", ticket_id)["status"] == "pending"
        assert ro("audit", "verify")["head"] == head

        assert checkpointed_hash(cli) == before
        assert stored_head(cli) == head
        assert cli.json("approval", "show", ticket_id)["status"] == "pending"
        assert reruns_of(cli, failed) == []
