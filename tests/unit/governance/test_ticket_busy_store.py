"""An approved ticket and a busy store: another process holding SQLite's write lock while the
ticket's action runs delays the action, it never burns the ticket; and an action that ran
is never recorded failed because its audit entry met the lock."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bunsui_core.actions import Gateway
from bunsui_core.actions import gateway as gateway_module
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError, ErrorCode, StoreError
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


def hold_lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding the database's write lock for HOLD_SECONDS, from now."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path), str(HOLD_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def released(holders: list[subprocess.Popen[str]]) -> None:
    for holder in holders:
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()


@dataclass
class PendingChange:
    """A job config change an agent asked for: a pending ticket, not yet decided."""

    home: Path
    gateway: Gateway
    session_id: str
    ticket_id: str

    def approve(self) -> str | None:
        """The human approves (and so executes) it; the error code the approver saw, if any."""
        try:
            self.gateway.invoke(
                getpass.getuser(), "approval:approve", {"ticket_id": self.ticket_id}
            )
        except BunsuiError as exc:
            return str(exc.code)
        return None

    def stored(self) -> tuple[str, bool, set[AuditResult]]:
        """The ticket's status, whether the change took effect, and its audit results."""
        store = SqliteStore(self.home / "bunsui.db")
        try:
            ticket = store.get_ticket(self.ticket_id)
            overrides = store.list_override_versions(self.session_id)
            entries = store.list_audit(action="job:update-config", limit=1000)
        finally:
            store.close()
        assert ticket is not None
        results = {e.result for e in entries if e.ticket_id == self.ticket_id}
        return str(ticket.status), bool(overrides), results


@pytest.fixture
def pending(tmp_path: Path) -> PendingChange:
    home = tmp_path / "home"
    gateway = Gateway(Settings.resolve(home))
    store = SqliteStore(home / "bunsui.db")
    try:
        session = queue_session(store, pipeline_data(command_job("a", "pass")))
    finally:
        store.close()
    requested = gateway.invoke(
        "ai-agent",
        "job:update-config",
        {"job_id": "a", "session_id": session.session_id, "memory": 128},
    ).model_dump(mode="json")
    assert requested["status"] == "pending_approval"
    return PendingChange(home, gateway, session.session_id, requested["ticket_id"])


@pytest.mark.slow
def test_a_lock_taken_while_the_approved_action_writes_delays_it(pending, monkeypatch):
    """Found by the chaos run: a served `approval approve` is fast enough to meet another
    process's lock mid-action; the ticket ended `failed` with nothing done."""
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", BUSY_TIMEOUT)
    holders: list[subprocess.Popen[str]] = []
    real_add = SqliteStore.add_override_version

    def locked_by_another_process_first(self, override):
        if not holders:  # the action's own write: another process takes the lock just now
            holders.append(hold_lock(self.path))
        return real_add(self, override)

    monkeypatch.setattr(SqliteStore, "add_override_version", locked_by_another_process_first)
    try:
        pending.approve()
    finally:
        released(holders)
    monkeypatch.undo()

    assert holders, "the lock was taken while the action wrote"
    status, changed, audited = pending.stored()
    assert (status, changed) == ("executed", True)
    assert AuditResult.EXECUTED in audited


def test_an_action_that_ran_is_not_recorded_failed_when_its_audit_hits_a_lock(pending, monkeypatch):
    """The action commits its write, then its EXECUTED audit entry meets a lock that outlasts
    every retry: the ticket still says executed (the change is in force), never failed, and
    the approver waits no longer than the ticket's patience (kept short here)."""
    monkeypatch.setattr(gateway_module, "TICKET_RETRY_SECONDS", 0.5)
    real_append = SqliteStore.append_audit

    def locked_at_the_executed_entry(self, event):
        if event.result == AuditResult.EXECUTED and event.ticket_id == pending.ticket_id:
            raise StoreError(f"database {self.path} is locked", code=ErrorCode.STORE_LOCKED)
        return real_append(self, event)

    monkeypatch.setattr(SqliteStore, "append_audit", locked_at_the_executed_entry)
    pending.approve()
    monkeypatch.undo()

    status, changed, _ = pending.stored()
    assert changed, "the approved change took effect"
    assert status == "executed"


@pytest.mark.slow
def test_a_lock_met_before_the_action_starts_is_store_locked_and_approving_again_resumes(
    pending, monkeypatch
):
    """The decision is stored, then the lock is taken before the ticket starts executing:
    the approver sees STORE_LOCKED (CLI exit 7) with the ticket still `approved` and nothing
    done; the same `approval approve` once the lock is gone runs it, once."""
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", BUSY_TIMEOUT)
    holders: list[subprocess.Popen[str]] = []
    real_update = SqliteStore.update_ticket

    def locked_after_the_decision(self, ticket, *, expected_version):
        stored = real_update(self, ticket, expected_version=expected_version)
        if str(stored.status) == "approved" and not holders:
            holders.append(hold_lock(self.path))
        return stored

    monkeypatch.setattr(SqliteStore, "update_ticket", locked_after_the_decision)
    try:
        assert pending.approve() == ErrorCode.STORE_LOCKED
        assert pending.stored() == ("approved", False, {AuditResult.PENDING_APPROVAL})
    finally:
        released(holders)
    monkeypatch.undo()

    assert pending.approve() is None
    status, changed, audited = pending.stored()
    assert (status, changed) == ("executed", True)
    assert AuditResult.EXECUTED in audited


APPROVER = """
import getpass, signal, subprocess, sys
from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.store import sqlite as sqlite_store
from bunsui_core.store.sqlite import SqliteStore

signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
sqlite_store.BUSY_TIMEOUT_SECONDS = 0.3
home, ticket_id, holder_script = sys.argv[1:]
real_add = SqliteStore.add_override_version

held = []

def locked_first(self, override):
    if not held:
        holder = subprocess.Popen(
            [sys.executable, "-c", holder_script, str(self.path), "60"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        holder.stdout.readline()
        held.append(holder)
        print(holder.pid, flush=True)  # the lock is held: the approver now waits
    return real_add(self, override)

SqliteStore.add_override_version = locked_first
Gateway(Settings.resolve(home)).invoke(
    getpass.getuser(), "approval:approve", {"ticket_id": ticket_id}
)
"""


@pytest.mark.slow
def test_ctrl_c_while_the_approved_action_waits_ends_the_ticket_failed_not_executing(pending):
    """The approver presses Ctrl-C while the action waits out a lock: the ticket ends
    `failed` with INTERRUPTED (before, it stayed `executing` for good: never to be run,
    approved again or expired)."""
    approver = subprocess.Popen(
        [sys.executable, "-c", APPROVER, str(pending.home), pending.ticket_id, LOCK_HOLDER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert approver.stdout is not None
    holder_pid = int(approver.stdout.readline())
    try:
        time.sleep(1.0)  # inside the patient wait
        approver.send_signal(signal.SIGINT)
    finally:
        os.kill(holder_pid, signal.SIGKILL)  # the lock goes: the ticket's end can be stored
    _out, err = approver.communicate(timeout=30)
    assert approver.returncode != 0
    assert "KeyboardInterrupt" in err
    status, changed, audited = pending.stored()
    assert (status, changed) == ("failed", False)
    assert AuditResult.EXECUTED not in audited
    store = SqliteStore(pending.home / "bunsui.db")
    try:
        ticket = store.get_ticket(pending.ticket_id)
    finally:
        store.close()
    assert ticket is not None
    assert ticket.error is not None
    assert ticket.error["code"] == ErrorCode.INTERRUPTED, json.dumps(ticket.error)
