"""A runner outlasts a locked store: someone holding SQLite's write lock past the busy timeout
delays the session's records, it does not fail the session (issue 11, read tools that end
someone else's run)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from bunsui_core.engine.local import LocalEngine
from bunsui_core.errors import BunsuiError, ErrorCode, StoreError
from bunsui_core.model.session import RunStatus, SessionStatus
from bunsui_core.store import sqlite as sqlite_store
from bunsui_core.store.patient import PatientStore, retry_locked
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session

BUSY_TIMEOUT = 0.3
HOLD_SECONDS = 2.0


class TestRetryLocked:
    def test_locked_calls_are_retried_until_they_succeed(self):
        """STORE_LOCKED twice, then success: the caller sees only the result."""
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise StoreError("locked", code=ErrorCode.STORE_LOCKED)
            return "stored"

        assert retry_locked(flaky) == "stored"
        assert len(calls) == 3

    def test_other_errors_and_a_spent_budget_are_raised(self):
        """Only STORE_LOCKED is retried, and only within the budget."""

        def corrupt() -> None:
            raise StoreError("bad", code=ErrorCode.STORE_CORRUPT)

        def locked() -> None:
            raise StoreError("locked", code=ErrorCode.STORE_LOCKED)

        with pytest.raises(BunsuiError) as corrupt_error:
            retry_locked(corrupt)
        assert corrupt_error.value.code == ErrorCode.STORE_CORRUPT
        started = time.monotonic()
        with pytest.raises(BunsuiError) as locked_error:
            retry_locked(locked, budget_seconds=0.3)
        assert locked_error.value.code == ErrorCode.STORE_LOCKED
        assert time.monotonic() - started < 1.0


def test_a_shared_budget_bounds_all_calls_together():
    """A ticket's approver waits so long for the whole action, not that long per store call:
    once the shared budget is spent, each locked call is tried once and fails."""

    class Locked:
        calls = 0

        def write(self) -> None:
            Locked.calls += 1
            raise StoreError("locked", code=ErrorCode.STORE_LOCKED)

    budget = 0.3
    shared = PatientStore(Locked(), budget_seconds=budget, shared=True)
    alone = PatientStore(Locked(), budget_seconds=budget)
    with pytest.raises(BunsuiError):
        shared.write()
    assert Locked.calls > 1, "retried while the budget lasted"
    time.sleep(budget)
    before = Locked.calls
    with pytest.raises(BunsuiError):
        shared.write()
    assert Locked.calls - before == 1
    before = Locked.calls
    with pytest.raises(BunsuiError):
        alone.write()
    assert Locked.calls - before >= 3  # a budget of its own: each call retries again


@pytest.mark.slow
def test_a_session_completes_while_another_connection_holds_the_write_lock(settings, monkeypatch):
    """The write lock is held for longer than the busy timeout while the job finishes:
    the session still ends completed, not failed/RUNNER_LOST."""
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", BUSY_TIMEOUT)
    store = SqliteStore(settings.database_path)
    session = queue_session(
        store, pipeline_data(command_job("short", "import time; time.sleep(1)"))
    )
    engine = LocalEngine(store, settings, poll_seconds=0.05)
    thread = threading.Thread(target=engine.run, args=(session.session_id,))
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        op.status is RunStatus.RUNNING for op in store.list_operation_runs(session.session_id)
    ):
        time.sleep(0.02)
    holder = sqlite3.connect(settings.database_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        time.sleep(HOLD_SECONDS)
        assert thread.is_alive(), "the runner gave up while the store was locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    final = store.get_session(session.session_id)
    assert final.status is SessionStatus.COMPLETED
    assert final.error_code is None
    assert [r.status for r in store.list_job_runs(session.session_id)] == [RunStatus.COMPLETED]
    store.close()
