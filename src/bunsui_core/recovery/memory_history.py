"""What earlier runs say about a job's memory: failures in a row and peaks when it succeeded.

Read from the store for memory plans (sizing.MemoryHistory): a rerun that failed on memory
again escalates instead of repeating a small step, and a job that once succeeded at some
peak is never offered less than that.
"""

from __future__ import annotations

from bunsui_core.model.session import ErrorRecord, RunStatus, Session
from bunsui_core.recovery.sizing import MemoryHistory
from bunsui_core.store.base import SessionFilter, Store

MAX_CHAIN = 10
PIPELINE_SESSIONS = 20
MEMORY_CODES_CATEGORY = "RESOURCE"


def _failed_on_memory(store: Store, errors: list[ErrorRecord], job_id: str) -> bool:
    """Whether the job's last error in a session was a memory failure, read as the analysis
    reads it (people's labels and the text model included), so the plan escalates on exactly
    the failures that were shown as memory failures."""
    from bunsui_core.diagnosis.analyzer import classify_record, label_votes  # noqa: PLC0415 - heavy, on demand

    mine = [e for e in errors if e.job_id == job_id]
    if not mine:
        return False
    last = mine[-1]
    result = classify_record(last, label_votes(store, [last.message]))
    return result.category.value == MEMORY_CODES_CATEGORY and any(
        p.action.value == "increase_memory" for p in result.priors[:1]
    )


def _failures_in_a_row(store: Store, session: Session, job_id: str) -> int:
    """This failure plus each parent rerun, walking back, whose same job failed on memory."""
    count = 1
    parent_id = session.parent_session_id
    while parent_id and count < MAX_CHAIN:
        parent = store.get_session(parent_id)
        if parent is None or not _failed_on_memory(store, store.list_errors(parent_id), job_id):
            break
        count += 1
        parent_id = parent.parent_session_id
    return count


def _succeeded_peak(store: Store, session: Session, job_id: str) -> float | None:
    """The highest peak RSS of this job's successful attempts in the pipeline's recent runs."""
    page = store.list_sessions(
        SessionFilter(pipeline_id=session.pipeline_id), limit=PIPELINE_SESSIONS
    )
    peaks = [
        attempt.peak_rss_mb
        for other in page.sessions
        for run in store.list_operation_runs(other.session_id, job_id)
        for attempt in run.attempts
        if attempt.status is RunStatus.COMPLETED and attempt.peak_rss_mb
    ]
    return max(peaks) if peaks else None


def memory_history(store: Store, session: Session, job_id: str | None) -> MemoryHistory:
    """The evidence earlier runs give for sizing this job's memory."""
    if job_id is None:
        return MemoryHistory()
    return MemoryHistory(
        failures_in_a_row=_failures_in_a_row(store, session, job_id),
        succeeded_peak_mb=_succeeded_peak(store, session, job_id),
    )
