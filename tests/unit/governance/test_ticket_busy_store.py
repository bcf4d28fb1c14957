"""An approved ticket outlasts a busy store: another process holding SQLite's write lock
past the busy timeout while the ticket's action writes delays the action, it does not burn
the ticket (found by the chaos run: a served `approval approve` is fast enough to meet the
lock mid-action, and the ticket ended `failed` with nothing done)."""

from __future__ import annotations

import getpass
import subprocess
import sys

import pytest

from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.governance.audit import AuditResult
from bunsui_core.store import sqlite as sqlite_store
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session

BUSY_TIMEOUT = 0.3
HOLD_SECONDS = 1.5

LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@pytest.mark.slow
def test_a_lock_taken_while_the_approved_action_writes_delays_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", BUSY_TIMEOUT)
    home = tmp_path / "home"
    gateway = Gateway(Settings.resolve(home))
    store = SqliteStore(home / "bunsui.db")
    try:
        session = queue_session(store, pipeline_data(command_job("a", "pass")))
    finally:
        store.close()
    pending = gateway.invoke(
        "ai-agent",
        "job:update-config",
        {"job_id": "a", "session_id": session.session_id, "memory": 128},
    ).model_dump(mode="json")
    assert pending["status"] == "pending_approval"
    ticket_id = pending["ticket_id"]

    holders: list[subprocess.Popen[str]] = []
    real_add = SqliteStore.add_override_version

    def locked_by_another_process_first(self, override):
        if not holders:  # the action's own write: another process takes the lock just now
            holder = subprocess.Popen(
                [sys.executable, "-c", LOCK_HOLDER, str(self.path), str(HOLD_SECONDS)],
                stdout=subprocess.PIPE,
                text=True,
            )
            holders.append(holder)
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
        return real_add(self, override)

    monkeypatch.setattr(SqliteStore, "add_override_version", locked_by_another_process_first)
    try:
        ticket = gateway.invoke(getpass.getuser(), "approval:approve", {"ticket_id": ticket_id})
    finally:
        for holder in holders:
            holder.wait(timeout=30)
            assert holder.stdout is not None
            holder.stdout.close()
    monkeypatch.undo()

    assert holders, "the lock was taken while the action wrote"
    done = ticket.model_dump(mode="json")
    assert done["status"] == "executed", (done["status"], done["error"])
    store = SqliteStore(home / "bunsui.db")
    try:
        assert store.list_override_versions(session.session_id), "the change took effect"
        entries = store.list_audit(action="job:update-config", limit=1000)
    finally:
        store.close()
    assert AuditResult.EXECUTED in {e.result for e in entries if e.ticket_id == ticket_id}
