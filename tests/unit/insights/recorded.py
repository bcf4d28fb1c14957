"""Write run history straight into a store: sessions, job runs and operation runs with the
attempts an engine would have recorded, so each insight rule can be given the history it
is about without running anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobRun,
    OperationAttempt,
    OperationRun,
    RunStatus,
    Session,
    SessionStatus,
)
from bunsui_core.store.base import Store

START = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """The stores' fixed-width UTC text."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def job(job_id: str, *, deps: list[str] | None = None, op_type: str = "command", **config: Any):
    """A one-operation job; `memory`, `timeout_seconds`, `retry` go into its config."""
    parameters: dict[str, Any] = {}
    if op_type == "command":
        parameters["command"] = ["true"]
    if "memory" in config:
        parameters["memory"] = config.pop("memory")
    return {
        "job_id": job_id,
        "operations": [
            {
                "operation_id": f"{job_id}-op",
                "config": {"operation_type": op_type, "parameters": parameters, **config},
            }
        ],
        "dependencies": deps or [],
    }


@dataclass
class Ran:
    """How one job went in one run."""

    elapsed: float = 10.0
    peak: float | None = 100.0
    limit: int | None = 512
    timeout: int | None = None
    status: RunStatus = RunStatus.COMPLETED
    attempts: int = 1
    wait: float = 1.0
    start: float = 0.0
    """Seconds after the session started."""
    error: str | None = None
    failed_attempts: list[RunStatus] = field(default_factory=list)


class Recorder:
    """One pipeline's runs, a day apart, written as the local engine would."""

    def __init__(self, store: Store, pipeline_id: str, *jobs: dict[str, Any], **top: Any) -> None:
        self.store = store
        self.pipeline_id = pipeline_id
        self.day = 0
        self.register(*jobs, **top)

    def register(self, *jobs: dict[str, Any], **top: Any) -> int:
        """Register (a new version of) the pipeline."""
        data = {"name": self.pipeline_id, "jobs": list(jobs), **top}
        pipeline = validate_pipeline_data(data)
        return self.store.register_pipeline(self.pipeline_id, pipeline).version

    def run(self, **jobs: Ran) -> str:
        """One finished session with these job outcomes; returns its id."""
        began = START + timedelta(days=self.day)
        self.day += 1
        version = self.store.get_pipeline(self.pipeline_id).version
        session_id = f"ses-{self.pipeline_id}-{self.day:05d}"
        ends = []
        for job_id, ran in jobs.items():
            ends.append(self._job(session_id, job_id, ran, began))
        failed = [j for j, r in jobs.items() if r.status is not RunStatus.COMPLETED]
        self.store.create_session(
            Session(
                session_id=session_id,
                pipeline_id=self.pipeline_id,
                pipeline_version=version,
                status=SessionStatus.FAILED if failed else SessionStatus.COMPLETED,
                created_at=stamp(began),
                started_at=stamp(began),
                finished_at=stamp(max(ends)),
                failed_jobs=failed,
            )
        )
        return session_id

    def _job(self, session_id: str, job_id: str, ran: Ran, began: datetime) -> datetime:
        clock = began + timedelta(seconds=ran.start)
        job_start = clock
        attempts = []
        for number in range(1, ran.attempts + 1):
            last = number == ran.attempts
            status = ran.status if last else RunStatus.FAILED
            finished = clock + timedelta(seconds=ran.elapsed)
            attempts.append(
                OperationAttempt(
                    attempt=number,
                    status=status,
                    started_at=stamp(clock),
                    finished_at=stamp(finished),
                    peak_rss_mb=ran.peak,
                    memory_limit_mb=ran.limit,
                    timeout_seconds=ran.timeout,
                    elapsed_seconds=ran.elapsed,
                )
            )
            if ran.error and status is not RunStatus.COMPLETED:
                self.store.add_error(
                    ErrorRecord(
                        session_id=session_id,
                        job_id=job_id,
                        operation_id=f"{job_id}-op",
                        attempt=number,
                        kind=FailureKind.EXIT_NONZERO,
                        message=ran.error,
                        timestamp=stamp(finished),
                    )
                )
            clock = finished + timedelta(seconds=0 if last else ran.wait)
        self.store.put_operation_run(
            OperationRun(
                session_id=session_id,
                job_id=job_id,
                operation_id=f"{job_id}-op",
                status=ran.status,
                attempts=attempts,
            )
        )
        self.store.put_job_run(
            JobRun(
                session_id=session_id,
                job_id=job_id,
                status=ran.status,
                started_at=stamp(job_start),
                finished_at=stamp(clock),
            )
        )
        return clock


def recorded_chain(store: Store) -> Recorder:
    """Pipeline `chain`, extract(2 s) -> transform(20 s) -> load(2 s), run three times:
    transform bounds the wall time."""
    rec = Recorder(
        store,
        "chain",
        job("extract"),
        job("transform", deps=["extract"]),
        job("load", deps=["transform"]),
    )
    for _ in range(3):
        rec.run(
            extract=Ran(elapsed=2),
            transform=Ran(elapsed=20, start=2),
            load=Ran(elapsed=2, start=22),
        )
    return rec
