"""Another local user, and someone with the database file, against the real CLI: file modes,
identity from the effective uid, read-only calls that leave no trace, and an audit log whose
indexes and tickets must agree with its hash chain."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from bunsui_core.config import os_user
from tests.conftest import etl_pipeline
from tests.e2e.test_cli import Cli

AGENT = ("--actor", "ai-agent")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def modes(home: Path) -> dict[str, int]:
    """Permission bits of the home and everything under it, by relative path."""
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return found


class TestFileModes:
    def test_home_and_everything_in_it_are_the_owners_alone(self, cli, tmp_path):
        """After a real run (database, logs, work files) nothing in the home is readable
        by group or others: the home is 0700, files 0600."""
        cli.json("pipeline", "run", etl_pipeline(tmp_path), "--wait", expect=10)
        found = modes(cli.home)
        assert found["."] == 0o700
        assert any(name.endswith((".stdout", ".stderr")) for name in found)  # the job logs
        exposed = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
        assert exposed == {}

    def test_an_existing_open_home_is_tightened(self, cli):
        """A home an older bunsui made 0755 with a 0644 database is made 0700/0600."""
        cli.json("session", "list")
        cli.home.chmod(0o755)
        (cli.home / "bunsui.db").chmod(0o644)
        cli.json("session", "list")
        assert stat.S_IMODE(cli.home.stat().st_mode) == 0o700
        assert stat.S_IMODE((cli.home / "bunsui.db").stat().st_mode) == 0o600


class TestIdentity:
    def test_os_user_comes_from_the_effective_uid_not_the_environment(self, cli):
        """USER/LOGNAME naming someone else do not change who the CLI acts as."""
        env = {"USER": "mallory", "LOGNAME": "mallory"}
        cli.json("session", "list", env=env)
        entries = cli.json("audit", "list")["entries"]
        assert {e["actor"] for e in entries} == {os_user()}

    def test_a_policy_binding_the_local_user_to_an_agent_role_is_refused(self, cli, tmp_path):
        """`$OS_USER` and an agent role on one name (here by a pattern) is POLICY_INVALID."""
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "agent:\n  kind: agent\n  allowed_actions: [session:list]\n"
            "operator:\n  kind: human\n  allowed_actions: ['*']\n"
            f"actors:\n  '{os_user()[:1]}*': agent\n  $OS_USER: operator\n"
        )
        error = cli.json("--policy", str(policy), "session", "list", expect=2)["error"]
        assert error["code"] == "POLICY_INVALID"
        assert "agent role" in error["message"]


class TestReadOnlyCalls:
    def test_a_read_only_call_creates_no_file_in_the_home(self, cli):
        """With no writer connected, read-only calls open SQLite without -wal/-shm files
        (nor a compiled policy: `cache/` is the earlier writable calls')."""
        cli.json("session", "list")
        before = sorted(p.name for p in cli.home.rglob("*"))
        assert before == ["bunsui.db", "cache", next(cli.home.glob("cache/policy-*.json")).name]
        for args in (("session", "list"), ("audit", "verify"), ("approval", "list")):
            cli.json("--read-only", *args)
        assert sorted(p.name for p in cli.home.rglob("*")) == before


def edit(cli: Cli, *statements: str) -> None:
    """Edit the database as someone with the file would, guard triggers dropped."""
    db = sqlite3.connect(cli.home / "bunsui.db", isolation_level=None)
    try:
        db.execute("DROP TRIGGER IF EXISTS audit_no_update")
        for sql in statements:
            assert db.execute(sql).rowcount >= 1, sql
    finally:
        db.close()


class TestAuditCrossChecks:
    def test_an_edited_actor_column_is_detected(self, cli):
        """Moving an entry to another actor in the index (hiding it from `audit list
        --actor`) breaks verification at that entry, though its body and hash are intact."""
        cli.json(*AGENT, "session", "list")
        cli.json("session", "list")
        cli.json("audit", "verify")
        edit(cli, "UPDATE audit SET actor = 'nobody' WHERE actor = 'ai-agent'")
        assert cli.json("audit", "list", "--actor", "ai-agent")["entries"] == []
        error = cli.json("audit", "verify", expect=13)["error"]
        assert error["code"] == "AUDIT_CHAIN_BROKEN"
        assert error["details"]["seq"] == 1
        assert "indexed actor" in error["message"]

    def test_a_ticket_marked_approved_without_audit_entries_is_reported(self, cli, tmp_path):
        """A pending ticket edited to `approved` in the tickets table: the chain has no
        approval for it, and verify says so."""
        ticket, pipeline = agent_registers_a_pipeline(cli, tmp_path)
        assert ticket["arguments"]["file"] == str(pipeline.resolve())
        cli.json("audit", "verify")
        approve = "UPDATE tickets SET status = 'approved', body = json_set(body, '$.status', "
        edit(cli, approve + f"'approved') WHERE ticket_id = '{ticket['ticket_id']}'")
        error = cli.json("audit", "verify", expect=13)["error"]
        assert error["details"]["problem"] == "tickets"
        assert ticket["ticket_id"] in error["message"]

    def test_an_approved_ticket_that_fails_its_file_check_is_audited_as_failed(self, cli, tmp_path):
        """The file changed after the request: execution refuses (CONFLICT), the chain
        records a failed entry for the ticket, and verify passes."""
        ticket, pipeline = agent_registers_a_pipeline(cli, tmp_path)
        pipeline.write_text(pipeline.read_text() + "# changed after the request\n")
        decided = cli.json("approval", "approve", ticket["ticket_id"], expect=4)
        assert decided["status"] == "failed"
        assert decided["error"]["code"] == "CONFLICT"
        entries = cli.json("audit", "list", "--actor", "ai-agent")["entries"]
        assert ("pipeline:register", "failed") in {(e["action"], e["result"]) for e in entries}
        cli.json("audit", "verify")


def agent_registers_a_pipeline(cli: Cli, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """A home whose pipeline root holds etl.yaml, and the agent's pending ticket to register
    it (agents' registrations need a person's approval)."""
    roots = tmp_path / "pipelines"
    roots.mkdir()
    cli.home.mkdir(mode=0o700)
    (cli.home / "config.yaml").write_text(yaml.safe_dump({"pipeline_roots": [str(roots)]}))
    pipeline = roots / "etl.yaml"
    pipeline.write_text(Path(etl_pipeline(roots)).read_text())
    return cli.json(*AGENT, "pipeline", "register", "etl.yaml", expect=6), pipeline
