"""Detecting sessions whose runner died (kill -9, reboot) so none stays `running` forever."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from bunsui_core.engine._process import LiveProcessGroups, is_job_shim
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    RunStatus,
    Session,
    SessionStatus,
    utc_now,
)
from bunsui_core.model.timestamps import seconds_between
from bunsui_core.store.base import SessionFilter, Store, update_session

HEARTBEAT_STALE_SECONDS = 30.0
UNCLAIMED_STALE_SECONDS = 60.0
RUNNER_LOST = "RUNNER_LOST"


def _pid_alive(pid: int) -> bool:
    """True while the process exists and has not exited (a zombie is an exited runner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def lost_reason(session: Session, *, now: str, host: str) -> str | None:
    """Why this active session's runner is gone, or None while it may still be alive.

    A runner on this host is checked by pid; elsewhere only its heartbeat can tell.
    """
    # Only active sessions have a runner; Step Functions runs the ones with an execution
    # (`sync` reads their fate from it).
    if session.status not in {SessionStatus.QUEUED, SessionStatus.RUNNING} or (
        session.execution_arn is not None
    ):
        return None
    runner = session.runner
    if runner is None:
        age = seconds_between(session.created_at, now)
        if age > UNCLAIMED_STALE_SECONDS:
            return f"no runner claimed the session within {UNCLAIMED_STALE_SECONDS:.0f} s"
        return None
    if runner.host == host and not _pid_alive(runner.pid):
        return f"runner process {runner.pid} on {runner.host} is gone"
    age = seconds_between(runner.heartbeat_at, now)
    if age > HEARTBEAT_STALE_SECONDS:
        return f"runner {runner.pid} on {runner.host} sent no heartbeat for {age:.0f} s"
    return None


def reap_lost_runners(store: Store) -> list[Session]:
    """Mark every session with a dead runner failed (RUNNER_LOST) and close its open runs.

    A read-only store is left as it is: the sessions show their last recorded state.
    """
    if store.read_only:
        return []
    now = utc_now()
    host = socket.gethostname()
    reaped: list[Session] = []
    for status in (SessionStatus.RUNNING, SessionStatus.QUEUED):
        page = store.list_sessions(SessionFilter(status=status), limit=1000)
        for session in page.sessions:
            reason = lost_reason(session, now=now, host=host)
            if reason is not None:
                reaped.append(
                    _mark_lost(
                        store,
                        session,
                        reason,
                        same_host=session.runner is None or session.runner.host == host,
                    )
                )
    return reaped


def _mark_lost(store: Store, session: Session, reason: str, *, same_host: bool) -> Session:
    orphans = LiveProcessGroups()
    failed_jobs: list[str] = []
    for op_run in store.list_operation_runs(session.session_id):
        if op_run.status is RunStatus.RUNNING:
            for attempt in op_run.attempts:
                if attempt.status is RunStatus.RUNNING and attempt.pid and same_host:
                    if is_job_shim(attempt.pid):
                        orphans.add(attempt.pid)
                    attempt.status = RunStatus.FAILED
                    attempt.finished_at = utc_now()
            op_run.status = RunStatus.FAILED
            store.put_operation_run(op_run)
    # Jobs run under their own shims and outlive the runner: kill their whole trees too.
    orphans.kill_all()
    for job_run in store.list_job_runs(session.session_id):
        if job_run.status is RunStatus.RUNNING:
            failed_jobs.append(job_run.job_id)
            store.put_job_run(
                job_run.model_copy(
                    update={
                        "status": RunStatus.FAILED,
                        "finished_at": utc_now(),
                        "error_summary": reason,
                    }
                )
            )
        elif job_run.status is RunStatus.PENDING:
            store.put_job_run(
                job_run.model_copy(
                    update={
                        "status": RunStatus.CANCELLED,
                        "finished_at": utc_now(),
                        "skipped_reason": "the session's runner was lost",
                    }
                )
            )
    store.add_error(
        ErrorRecord(
            session_id=session.session_id,
            kind=FailureKind.RUNNER_LOST,
            message=f"Runner lost: {reason}",
        )
    )

    def fail(current: Session) -> Session:
        if current.status.is_terminal:
            return current
        return current.model_copy(
            update={
                "status": SessionStatus.FAILED,
                "finished_at": utc_now(),
                "error_code": RUNNER_LOST,
                "error_summary": f"Runner lost: {reason}",
                "failed_jobs": sorted(failed_jobs),
            }
        )

    return update_session(store, session.session_id, fail)
