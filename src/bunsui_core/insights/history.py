"""A pipeline's recent runs, reduced to the per-job numbers insights are computed from.

Reading is bounded by the window, not by how much history is stored: the newest sessions
of one pipeline come from the by-pipeline index, then each session's own job and operation
runs (and its errors only when something failed or was retried).
"""

from __future__ import annotations

from dataclasses import dataclass

from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import JobRun, OperationRun, RunStatus, Session
from bunsui_core.model.timestamps import seconds_between
from bunsui_core.store.base import SessionFilter, Store

HISTORY_WINDOW = 30
"""Sessions an insight looks back over: a month of daily runs."""

MEMORY_FAILURE_RATIO = 0.9
"""A failed attempt that peaked this close to its limit counts as running out of memory."""


def elapsed(start: str | None, end: str | None) -> float | None:
    """Seconds between two stored timestamps, None when either is missing (not yet ended)."""
    return seconds_between(start, end) if start and end else None


@dataclass(frozen=True)
class JobSample:
    """One job in one session: what it used against what it was given."""

    job_id: str
    status: RunStatus
    wall_seconds: float | None
    run_seconds: float
    retry_wait_seconds: float
    attempts: int
    peak_rss_mb: float | None
    memory_limit_mb: int | None
    longest_attempt_seconds: float | None
    timeout_seconds: int | None
    reserved_gib_hours: float
    used_gib_hours: float
    out_of_memory: bool
    timed_out: bool
    fingerprints: tuple[str, ...] = ()

    @property
    def memory_ratio(self) -> float | None:
        """Peak over limit, when both are known."""
        if self.peak_rss_mb is None or not self.memory_limit_mb:
            return None
        return self.peak_rss_mb / self.memory_limit_mb

    @property
    def duration_ratio(self) -> float | None:
        """Longest attempt over its timeout, when both are known."""
        if self.longest_attempt_seconds is None or not self.timeout_seconds:
            return None
        return self.longest_attempt_seconds / self.timeout_seconds


@dataclass(frozen=True)
class RunSample:
    """One finished session of the pipeline and its jobs."""

    session_id: str
    created_at: str
    pipeline_version: int
    status: str
    wall_seconds: float | None
    jobs: dict[str, JobSample]


@dataclass
class History:
    """The latest pipeline version and its recent finished runs, oldest first."""

    pipeline_id: str
    version: int
    pipeline: Pipeline
    runs: list[RunSample]

    def job_samples(self, job_id: str) -> list[tuple[RunSample, JobSample]]:
        """The runs in which this job ran (not skipped), oldest first."""
        return [
            (run, run.jobs[job_id])
            for run in self.runs
            if job_id in run.jobs and run.jobs[job_id].status is not RunStatus.SKIPPED
        ]


def _job_sample(job_run: JobRun, operations: list[OperationRun]) -> JobSample:
    """Fold a job's operation attempts into one sample."""
    attempts = [a for op in operations for a in op.attempts]
    peak = max(
        (a for a in attempts if a.peak_rss_mb is not None),
        key=lambda a: a.peak_rss_mb or 0.0,
        default=None,
    )
    longest = max(
        (a for a in attempts if a.elapsed_seconds is not None),
        key=lambda a: a.elapsed_seconds or 0.0,
        default=None,
    )
    run_seconds = sum(a.elapsed_seconds or 0.0 for a in attempts)
    waits = 0.0
    for op in operations:
        for before, after in zip(op.attempts, op.attempts[1:], strict=False):
            gap = elapsed(before.finished_at, after.started_at)
            waits += max(gap or 0.0, 0.0)
    reserved = sum(
        (a.memory_limit_mb or 0) / 1024 * (a.elapsed_seconds or 0.0) / 3600 for a in attempts
    )
    used = sum((a.peak_rss_mb or 0.0) / 1024 * (a.elapsed_seconds or 0.0) / 3600 for a in attempts)
    out_of_memory = any(
        a.status is RunStatus.FAILED
        and a.peak_rss_mb is not None
        and a.memory_limit_mb
        and a.peak_rss_mb >= MEMORY_FAILURE_RATIO * a.memory_limit_mb
        for a in attempts
    )
    return JobSample(
        job_id=job_run.job_id,
        status=job_run.status,
        wall_seconds=elapsed(job_run.started_at, job_run.finished_at),
        run_seconds=run_seconds,
        retry_wait_seconds=waits,
        attempts=max((len(op.attempts) for op in operations), default=0),
        peak_rss_mb=peak.peak_rss_mb if peak else None,
        memory_limit_mb=peak.memory_limit_mb if peak else None,
        longest_attempt_seconds=longest.elapsed_seconds if longest else None,
        timeout_seconds=longest.timeout_seconds if longest else None,
        reserved_gib_hours=reserved,
        used_gib_hours=used,
        out_of_memory=out_of_memory,
        timed_out=any(a.status is RunStatus.TIMEOUT for a in attempts),
    )


def _run_sample(store: Store, session: Session) -> RunSample:
    """Read one session's runs (and its errors when anything failed or retried)."""
    operations: dict[str, list[OperationRun]] = {}
    for op in store.list_operation_runs(session.session_id):
        operations.setdefault(op.job_id, []).append(op)
    jobs = {
        r.job_id: _job_sample(r, operations.get(r.job_id, []))
        for r in store.list_job_runs(session.session_id)
    }
    if any(j.attempts > 1 or j.status is RunStatus.FAILED for j in jobs.values()):
        prints: dict[str, set[str]] = {}
        for error in store.list_errors(session.session_id):
            if error.job_id is not None:
                prints.setdefault(error.job_id, set()).add(error.fingerprint)
        jobs = {
            job_id: _with_fingerprints(sample, prints.get(job_id, set()))
            for job_id, sample in jobs.items()
        }
    return RunSample(
        session_id=session.session_id,
        created_at=session.created_at,
        pipeline_version=session.pipeline_version,
        status=str(session.status),
        wall_seconds=elapsed(session.started_at, session.finished_at),
        jobs=jobs,
    )


def _with_fingerprints(sample: JobSample, prints: set[str]) -> JobSample:
    if not prints:
        return sample
    return JobSample(**{**sample.__dict__, "fingerprints": tuple(sorted(prints))})


def load_history(store: Store, pipeline_id: str, *, window: int = HISTORY_WINDOW) -> History | None:
    """The pipeline's newest `window` finished sessions, oldest first; None if not registered."""
    latest = store.get_pipeline(pipeline_id)
    if latest is None:
        return None
    sessions: list[Session] = []
    cursor: str | None = None
    while len(sessions) < window:
        page = store.list_sessions(
            SessionFilter(pipeline_id=pipeline_id), limit=window, cursor=cursor
        )
        sessions.extend(s for s in page.sessions if s.status.is_terminal)
        cursor = page.next_cursor
        if cursor is None:
            break
    return History(
        pipeline_id=pipeline_id,
        version=latest.version,
        pipeline=latest.pipeline,
        runs=[_run_sample(store, s) for s in reversed(sessions[:window])],
    )
