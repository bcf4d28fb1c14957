"""Governance in the gateway: read-only mode over every write action, one audit entry per
call with the right result, and approved recovery plans running under their ticket. Real
SQLite, real pipeline processes."""

from __future__ import annotations

import getpass
import hashlib
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.actions import REGISTRY, Gateway
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, etl_pipeline, pipeline_data, queue_session

OS_USER = getpass.getuser()  # operator + approver under the shipped policy
AGENT = "ai-agent"  # an agent: reruns, config changes, runs need approval
NOBODY = "mallory"  # no role at all: default deny


class Bunsui:
    """One bunsui home seen through the gateway, plus direct looks at its SQLite file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway = Gateway(settings)

    def __call__(
        self, actor: str, name: str, /, correlation_id: str | None = None, **args: Any
    ) -> dict[str, Any]:
        result = self.gateway.invoke(actor, name, args, correlation_id=correlation_id)
        return result.model_dump(mode="json")

    def error(self, actor: str, name: str, /, **args: Any) -> BunsuiError:
        with pytest.raises(BunsuiError) as caught:
            self.gateway.invoke(actor, name, args)
        return caught.value

    def store(self) -> SqliteStore:
        return SqliteStore(self.settings.database_path)

    def audit(self, after_seq: int = 0) -> list[dict[str, Any]]:
        store = self.store()
        try:
            return [
                e.model_dump(mode="json")
                for e in store.list_audit(after_seq=after_seq, limit=10_000)
            ]
        finally:
            store.close()

    def head_seq(self) -> int:
        store = self.store()
        try:
            head = store.audit_head()
        finally:
            store.close()
        return head.seq if head else 0

    def raw_audit_rows(self) -> list[str]:
        with closing(sqlite3.connect(self.settings.database_path)) as db:
            return [" ".join(map(str, row)) for row in db.execute("SELECT * FROM audit")]

    def wait_finished(self, session_id: str, timeout: float = 30) -> str:
        """Wait for a detached session by reading the store (no gateway call, no audit)."""
        deadline = time.monotonic() + timeout
        store = self.store()
        try:
            while time.monotonic() < deadline:
                session = store.get_session(session_id)
                assert session is not None
                if session.status.is_terminal:
                    return str(session.status)
                time.sleep(0.1)
        finally:
            store.close()
        raise AssertionError(f"session {session_id} did not finish")


@pytest.fixture
def bunsui(settings: Settings) -> Bunsui:
    return Bunsui(settings)


@pytest.fixture
def failed(bunsui: Bunsui, tmp_path: Path) -> str:
    """A session of the etl pipeline whose transform job ran out of memory."""
    session = bunsui(OS_USER, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
    assert (session["status"], session["failed_jobs"]) == ("failed", ["transform"])
    return session["session_id"]


def snapshot(settings: Settings) -> dict[str, Any]:
    """Everything stored: named counts for readable failures, every row of every table, and
    the file's bytes once the WAL is folded in."""
    path = settings.database_path
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        rows = {
            table: db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608
            for table in tables
        }
        head = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return {
        "sessions": len(rows["sessions"]),
        "job_runs": len(rows["job_runs"]),
        "override_versions": len(rows["job_overrides"]),
        "tickets": [(r[0], r[4], r[6]) for r in rows["tickets"]],
        "audit_head": head,
        "rows": rows,
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def write_cases(
    *, failed: str, queued: str, pipeline: str, plan_id: str, ticket_id: str
) -> dict[str, dict[str, Any]]:
    """A valid argument set per write action, naming real things so that any call let
    through would really change state. A new write action must get a case here."""
    return {
        "approval:approve": {"ticket_id": ticket_id},
        "approval:cancel": {"ticket_id": ticket_id},
        "approval:reject": {"ticket_id": ticket_id, "reason": "not now"},
        "aws:init": {"endpoint_url": "http://127.0.0.1:9"},  # refused before any AWS call
        "notify:test": {},  # refused before any message is sent
        "error:label": {"error_id": "err-any", "category": "DATA", "action": "fix_code_or_data"},
        "error:learn": {
            "error_code": "LOCAL_MEMORY_LIMIT",
            "action": "increase_memory",
            "outcome": "success",
        },
        "insight:apply": {"insight_id": "ins-etl-00000000"},
        "insight:dismiss": {"insight_id": "ins-etl-00000000", "reason": "not needed"},
        "job:mark": {
            "job_id": "transform",
            "session_id": failed,
            "status": "succeeded",
            "reason": "fixed by hand",
        },
        "job:rerun": {"job_id": "transform", "session_id": failed, "batch_size": 10},
        "job:update-command": {
            "job_id": "transform",
            "session_id": failed,
            "command": '["python", "-c", "pass"]',
        },
        "job:update-config": {"job_id": "transform", "session_id": failed, "memory": 256},
        "pipeline:register": {"file": pipeline, "pipeline_id": "other"},
        "pipeline:update-config": {"pipeline_id": "etl", "job": "transform", "memory": 256},
        "pipeline:run": {"pipeline": pipeline, "wait": True},
        "recovery:execute": {"plan_id": plan_id, "dry_run": False},
        "session:cancel": {"session_id": queued},
        "session:claim": {"session_id": failed},
        "session:escalate": {"session_id": failed, "reason": "needs a person"},
        "session:release": {"session_id": failed},
        "session:rerun": {"session_id": failed},
        "session:rerun-many": {"filter": {"status": "failed"}, "from_failed": True},
        "session:resolve-escalation": {"session_id": failed},
    }


class TestReadOnlySweep:
    def test_every_write_action_is_refused_and_nothing_changes(
        self, bunsui, failed, settings, tmp_path
    ):
        """Every registry action with a write effect, called with valid arguments through a
        read-only gateway by an operator, an agent or a stranger, raises READ_ONLY (before
        policy, tickets or audit) and leaves every table and the file's bytes unchanged;
        recovery:execute as a dry run (a preview) still works."""
        pipeline = etl_pipeline(tmp_path)
        plan_id = bunsui(AGENT, "recovery:suggest", session_id=failed)["recovery_plans"][0][
            "plan_id"
        ]
        ticket_id = bunsui(AGENT, "job:rerun", job_id="transform", session_id=failed)["ticket_id"]
        store = bunsui.store()
        try:
            queued = queue_session(store, pipeline_data(command_job("a", "pass"))).session_id
        finally:
            store.close()
        cases = write_cases(
            failed=failed, queued=queued, pipeline=pipeline, plan_id=plan_id, ticket_id=ticket_id
        )
        writes = sorted(a.name for a in REGISTRY if a.effect.value == "write")
        assert sorted(cases) == writes, "every write action needs a read-only case"
        for name, args in cases.items():
            REGISTRY.get(name).input_model.model_validate(args)  # valid: READ_ONLY is the reason

        before = snapshot(settings)
        read_only = Gateway(Settings.resolve(settings.home, read_only=True))
        for actor in (OS_USER, AGENT, NOBODY):
            for name, args in cases.items():
                with pytest.raises(BunsuiError) as caught:
                    read_only.invoke(actor, name, args)
                assert caught.value.code == "READ_ONLY", (actor, name, caught.value.to_dict())
                assert caught.value.details == {"action": name}
        assert snapshot(settings) == before

        for actor in (OS_USER, AGENT):
            preview = read_only.invoke(
                actor, "recovery:execute", {"plan_id": plan_id, "dry_run": True}
            ).model_dump(mode="json")
            assert preview["dry_run"] is True
            assert [(s["action"], s["status"]) for s in preview["steps"]] == [
                ("job:update-config", "would_run"),
                ("job:rerun", "would_run"),
            ]
            assert preview["steps"][0]["result"]["diff"]["memory_mb"]["before"] == 96
        reads = read_only.invoke(AGENT, "session:list", {}).model_dump(mode="json")
        assert {s["session_id"] for s in reads["sessions"]} == {failed, queued}
        assert snapshot(settings) == before


def only(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(entries) == 1, entries
    return entries[0]


NO_APPROVAL = {"required": False, "approved_by": None, "approved_at": None}


class TestAuditOfEveryCall:
    def test_each_outcome_is_recorded_with_its_result(self, bunsui, failed):
        """allowed, denied, pending_approval, approved + executed, failed and invalid calls
        each leave exactly the entries they should, and the chain verifies."""
        seq = bunsui.head_seq()

        bunsui(OS_USER, "session:list", correlation_id="cor-read")
        allowed = only(bunsui.audit(seq))
        assert allowed == {
            **allowed,
            "actor": OS_USER,
            "action": "session:list",
            "result": "allowed",
            "approval": NO_APPROVAL,
            "error_code": None,
            "ticket_id": None,
            "correlation_id": "cor-read",
            "resource": None,
        }
        assert "allowed_actions" in allowed["rule"]
        seq = allowed["seq"]

        denied_error = bunsui.error(AGENT, "approval:approve", ticket_id="tkt-000000000000")
        assert denied_error.code == "PERMISSION_DENIED"
        denied = only(bunsui.audit(seq))
        assert (denied["actor"], denied["action"], denied["result"]) == (
            AGENT,
            "approval:approve",
            "denied",
        )
        assert "denied_actions 'approval:approve'" in denied["rule"]
        assert denied["resource"] == "ticket_id:tkt-000000000000"
        seq = denied["seq"]

        stranger = bunsui.error(NOBODY, "session:list")
        assert stranger.code == "PERMISSION_DENIED"
        strange = only(bunsui.audit(seq))
        assert (strange["actor"], strange["result"]) == (NOBODY, "denied")
        assert "default deny" in strange["rule"]
        seq = strange["seq"]

        request = {"job_id": "transform", "session_id": failed, "batch_size": 10}
        ticket = bunsui(AGENT, "job:rerun", correlation_id="cor-ask", **request)
        assert ticket["status"] == "pending_approval"
        pending = only(bunsui.audit(seq))
        assert pending == {
            **pending,
            "actor": AGENT,
            "action": "job:rerun",
            "result": "pending_approval",
            "ticket_id": ticket["ticket_id"],
            "approval": {"required": True, "approved_by": None, "approved_at": None},
            "session_id": failed,
            "resource": "job_id:transform",
            "correlation_id": "cor-ask",
            "rule": ticket["rule"],
        }
        assert pending["arguments"] == ticket["arguments"]
        seq = pending["seq"]

        done = bunsui(
            OS_USER, "approval:approve", correlation_id="cor-yes", ticket_id=ticket["ticket_id"]
        )
        assert done["status"] == "executed"
        approved, executed, approve_call = bunsui.audit(seq)
        assert {e["correlation_id"] for e in (approved, executed, approve_call)} == {"cor-yes"}
        assert (approved["actor"], approved["action"], approved["result"]) == (
            OS_USER,
            "job:rerun",
            "approved",
        )
        assert approved["ticket_id"] == ticket["ticket_id"]
        assert approved["approval"] == {
            "required": True,
            "approved_by": OS_USER,
            "approved_at": done["decided_at"],
        }
        assert (executed["actor"], executed["action"], executed["result"]) == (
            AGENT,
            "job:rerun",
            "executed",
        )
        assert executed["approval"] == approved["approval"]
        assert executed["ticket_id"] == ticket["ticket_id"]
        assert executed["arguments_hash"] == pending["arguments_hash"]
        assert (approve_call["actor"], approve_call["action"], approve_call["result"]) == (
            OS_USER,
            "approval:approve",
            "allowed",
        )
        assert approve_call["resource"] == f"ticket_id:{ticket['ticket_id']}"
        seq = approve_call["seq"]

        missing = bunsui.error(OS_USER, "session:describe", session_id="ses-nope")
        assert missing.code == "NOT_FOUND"
        failed_entry = only(bunsui.audit(seq))
        assert (failed_entry["result"], failed_entry["error_code"]) == ("failed", "NOT_FOUND")
        assert failed_entry["session_id"] == "ses-nope"
        assert failed_entry["rule"] is not None
        seq = failed_entry["seq"]

        unknown = bunsui.error(AGENT, "session:explode", session_id=failed)
        assert unknown.code == "NOT_FOUND"
        unknown_entry = only(bunsui.audit(seq))
        assert (unknown_entry["action"], unknown_entry["result"]) == ("session:explode", "failed")
        assert (unknown_entry["error_code"], unknown_entry["rule"]) == ("NOT_FOUND", None)
        seq = unknown_entry["seq"]

        invalid = bunsui.error(OS_USER, "session:list", limit=0)
        assert invalid.code == "INVALID_ARGUMENT"
        invalid_entry = only(bunsui.audit(seq))
        assert (invalid_entry["result"], invalid_entry["error_code"]) == (
            "failed",
            "INVALID_ARGUMENT",
        )
        assert invalid_entry["arguments"] == {"limit": 0}
        seq = invalid_entry["seq"]

        verified = bunsui(OS_USER, "audit:verify")
        assert (verified["ok"], verified["entries"]) == (True, seq)
        assert bunsui.wait_finished(done["result"]["session_id"]) == "completed"

    def test_secret_looking_arguments_never_reach_the_audit_log(self, bunsui, failed):
        """Secret-looking keys are redacted in every kind of entry (allowed, pending, failed
        validation) and the secrets appear nowhere in the stored rows; the chain verifies."""
        seq = bunsui.head_seq()
        changed = bunsui(
            OS_USER,
            "job:update-config",
            job_id="transform",
            session_id=failed,
            param={"api_token": "xyz-allowed", "mode": "fast"},
        )
        assert changed["override"]["parameters"] == {"api_token": "xyz-allowed", "mode": "fast"}
        ticket = bunsui(
            AGENT,
            "job:update-config",
            job_id="transform",
            session_id=failed,
            param={"db_password": "xyz-pending"},
        )
        assert ticket["status"] == "pending_approval"
        invalid = bunsui.error(
            OS_USER,
            "job:update-config",
            job_id="transform",
            session_id=failed,
            memory=1,
            param={"secret_key": "xyz-invalid"},
            credentials={"aws": "xyz-unknown-field"},
        )
        assert invalid.code == "INVALID_ARGUMENT"

        allowed, pending, failed_entry = bunsui.audit(seq)
        assert allowed["result"] == "allowed"
        assert allowed["arguments"]["param"] == {"api_token": "[redacted]", "mode": "fast"}
        assert pending["result"] == "pending_approval"
        assert pending["arguments"]["param"] == {"db_password": "[redacted]"}
        assert failed_entry["result"] == "failed"
        assert failed_entry["arguments"]["param"] == {"secret_key": "[redacted]"}
        assert failed_entry["arguments"]["credentials"] == "[redacted]"
        stored = "\n".join(bunsui.raw_audit_rows())
        assert "xyz" not in stored
        assert bunsui(OS_USER, "audit:verify")["ok"] is True

    def test_a_different_secret_value_is_a_different_request(self, bunsui, failed):
        """Requests that differ only in a secret-looking argument are different requests: the
        second must not be answered with the first's ticket (which would run the old value)."""
        common = {"job_id": "transform", "session_id": failed}
        first = bunsui(AGENT, "job:update-config", **common, param={"api_token": "old"})
        second = bunsui(AGENT, "job:update-config", **common, param={"api_token": "new"})
        assert second["arguments"]["param"] == {"api_token": "new"}
        assert second["ticket_id"] != first["ticket_id"]


class TestApprovedRecoveryPlan:
    def test_steps_run_under_the_plans_ticket(self, bunsui, failed):
        """An agent's recovery:execute becomes one ticket; once approved, its update-config and
        rerun steps run as executed entries carrying that ticket and approver, no second
        ticket is made, and the rerun completes with the raised memory."""
        plan = bunsui(AGENT, "recovery:suggest", session_id=failed)["recovery_plans"][0]
        assert (plan["action"], plan["executable"]) == ("increase_memory", True)
        preview = bunsui(AGENT, "recovery:execute", plan_id=plan["plan_id"])
        assert preview["dry_run"] is True  # a preview needs no ticket
        ticket = bunsui(AGENT, "recovery:execute", plan_id=plan["plan_id"], dry_run=False)
        assert (ticket["status"], ticket["action"]) == ("pending_approval", "recovery:execute")
        seq = bunsui.head_seq()

        done = bunsui(
            OS_USER, "approval:approve", correlation_id="cor-plan", ticket_id=ticket["ticket_id"]
        )
        assert done["status"] == "executed", done["error"]
        steps = done["result"]["steps"]
        assert [(s["action"], s["status"]) for s in steps] == [
            ("job:update-config", "done"),
            ("job:rerun", "done"),
        ]
        entries = bunsui.audit(seq)
        assert [(e["actor"], e["action"], e["result"]) for e in entries] == [
            (OS_USER, "recovery:execute", "approved"),
            (AGENT, "job:update-config", "executed"),
            (AGENT, "job:rerun", "executed"),
            (AGENT, "recovery:execute", "executed"),
            (OS_USER, "approval:approve", "allowed"),
        ]
        approval = {"required": True, "approved_by": OS_USER, "approved_at": done["decided_at"]}
        for entry in entries[:4]:
            assert entry["ticket_id"] == ticket["ticket_id"], entry
            assert entry["approval"] == approval, entry
        assert {e["correlation_id"] for e in entries} == {"cor-plan"}

        tickets = bunsui(OS_USER, "approval:list")["tickets"]
        assert [t["ticket_id"] for t in tickets] == [ticket["ticket_id"]]
        rerun_id = steps[1]["result"]["session_id"]
        assert bunsui.wait_finished(rerun_id) == "completed"
        described = bunsui(OS_USER, "session:describe", session_id=rerun_id)
        assert (described["parent_session_id"], described["requested_by"]) == (failed, AGENT)
