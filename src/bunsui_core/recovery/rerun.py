"""Reruns: a new session linked to the original that skips what already succeeded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bunsui_core.errors import (
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    InvalidTransitionError,
)
from bunsui_core.model.claims import inherited_claim
from bunsui_core.model.dag import downstream_of, topological_order
from bunsui_core.model.overrides import merge_overrides
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.recovery import OverrideVersion
from bunsui_core.model.session import (
    JobOverride,
    JobRun,
    RecoveryContext,
    RunStatus,
    Session,
    SessionStatus,
    new_id,
    utc_now,
)
from bunsui_core.recovery.overrides import effective_overrides
from bunsui_core.store.base import Store

MAX_RERUNS_PER_SESSION = 5
"""Retry budget: reruns descending from one original session, so nothing loops forever."""

SUCCEEDED = {RunStatus.COMPLETED, RunStatus.SKIPPED}


class RerunStrategy(StrEnum):
    """Which jobs a rerun executes again."""

    CHECKPOINT = "checkpoint"
    FAILED_ONLY = "failed-only"
    FULL = "full"


@dataclass(frozen=True)
class RerunSelection:
    """The split of a pipeline's jobs for one rerun."""

    jobs_to_run: list[str]
    skipped_jobs: list[str]


def select_jobs(
    pipeline: Pipeline,
    statuses: Mapping[str, RunStatus],
    strategy: RerunStrategy,
    from_jobs: set[str],
) -> RerunSelection:
    """Pure: what reruns. Everything downstream of a rerun job reruns; every job that did not
    succeed reruns; with `full` everything does; the rest (succeeded before) is skipped."""
    edges = {j.job_id: j.dependencies for j in pipeline.jobs}
    order = topological_order(edges)
    unknown = from_jobs - edges.keys()
    if unknown:
        raise InvalidArgumentError(f"unknown job(s): {sorted(unknown)}", details={"jobs": order})
    if strategy is RerunStrategy.FULL:
        return RerunSelection(jobs_to_run=order, skipped_jobs=[])
    not_succeeded = {j for j in order if statuses.get(j) not in SUCCEEDED}
    forced = (from_jobs if strategy is RerunStrategy.CHECKPOINT else set()) | not_succeeded
    to_run = forced | downstream_of(edges, forced)
    return RerunSelection(
        jobs_to_run=[j for j in order if j in to_run],
        skipped_jobs=[j for j in order if j not in to_run],
    )


def estimate_minutes(
    pipeline: Pipeline, jobs: list[str], durations: Mapping[str, float]
) -> float | None:
    """Critical-path minutes over the jobs to run, from recorded durations; None if any unknown."""
    if any(j not in durations for j in jobs):
        return None
    chosen = set(jobs)
    finish: dict[str, float] = {}
    for job in topological_order({j.job_id: j.dependencies for j in pipeline.jobs}):
        if job in chosen:
            deps = [finish[d] for d in pipeline.job(job).dependencies if d in finish]
            finish[job] = max(deps, default=0.0) + durations[job]
    return round(max(finish.values(), default=0.0) / 60, 2)


def recorded_durations(runs: list[JobRun]) -> dict[str, float]:
    """Seconds each job took in a session (from its start/finish stamps)."""
    durations = {}
    for run in runs:
        if run.started_at and run.finished_at:
            start = datetime.fromisoformat(run.started_at.replace("Z", "+00:00"))
            end = datetime.fromisoformat(run.finished_at.replace("Z", "+00:00"))
            durations[run.job_id] = (end - start).total_seconds()
    return durations


def idempotency_key(original_id: str, request: Mapping[str, Any]) -> str:
    """Derived key: the same rerun request for the same session is the same rerun."""
    canonical = json.dumps({"session": original_id, **request}, sort_keys=True, default=str)
    return "rk-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RerunRequest:
    """Everything that defines a rerun."""

    strategy: RerunStrategy
    from_jobs: set[str]
    extra_overrides: dict[str, JobOverride]
    recovery: RecoveryContext | None
    idempotency_key: str
    requested_by: str
    fingerprint: str = ""
    """sha256 of everything the caller asked for: a key reused for another request is refused."""


@dataclass(frozen=True)
class RerunPlan:
    """What a rerun request would do: a new session running `selection` with `overrides`,
    or nothing new when its idempotency key already names a rerun (`existing`)."""

    selection: RerunSelection
    overrides: dict[str, JobOverride]
    existing: Session | None
    workdirs: dict[str, str | None]


def request_fingerprint(original_id: str, request: Mapping[str, Any]) -> str:
    """sha256 of a rerun request as the caller made it (the session included)."""
    canonical = json.dumps({"session": original_id, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def plan_rerun(
    store: Store,
    original: Session,
    pipeline: Pipeline,
    request: RerunRequest,
    planned: Sequence[OverrideVersion] = (),
) -> RerunPlan:
    """Everything `create_rerun` would do, deciding nothing: a ticket's preview shows it
    (with `planned` overrides that earlier steps of the same plan will have recorded)."""
    existing = _existing(store, request)
    if existing is not None:
        return RerunPlan(
            selection=RerunSelection(
                jobs_to_run=[
                    j.job_id for j in pipeline.jobs if j.job_id not in existing.skipped_jobs
                ],
                skipped_jobs=existing.skipped_jobs,
            ),
            overrides=existing.config_overrides,
            existing=existing,
            workdirs={},
        )
    if not original.status.is_terminal:
        raise InvalidTransitionError(
            f"session {original.session_id} is still {original.status}; rerun it once it ends",
            code=ErrorCode.SESSION_ACTIVE,
            details={"session_id": original.session_id, "status": str(original.status)},
        )
    root = original.root_session_id or original.session_id
    if store.count_reruns(root) >= MAX_RERUNS_PER_SESSION:
        raise InvalidTransitionError(
            f"session {root} has been rerun {MAX_RERUNS_PER_SESSION} times; a person must "
            "look before trying again",
            code=ErrorCode.RETRY_BUDGET_EXHAUSTED,
            details={"root_session_id": root, "max_reruns": MAX_RERUNS_PER_SESSION},
        )
    runs = {r.job_id: r for r in store.list_job_runs(original.session_id)}
    selection = select_jobs(
        pipeline, {j: r.status for j, r in runs.items()}, request.strategy, request.from_jobs
    )
    overrides = effective_overrides(store, original, planned)
    for job_id, extra in request.extra_overrides.items():
        overrides[job_id] = merge_overrides(overrides.get(job_id), extra)
    return RerunPlan(
        selection=selection,
        overrides=overrides,
        existing=None,
        workdirs={j: r.workdir for j, r in runs.items()},
    )


def create_rerun(
    store: Store, original: Session, pipeline: Pipeline, request: RerunRequest
) -> tuple[Session, RerunSelection, bool]:
    """Create the rerun session (queued) with its skipped jobs pre-recorded.

    Returns (session, selection, created): an idempotent repeat returns the first rerun and
    created=False.
    """
    planned = plan_rerun(store, original, pipeline, request)
    selection = planned.selection
    if planned.existing is not None:
        return planned.existing, selection, False
    root = original.root_session_id or original.session_id
    session = Session(
        session_id=new_id("ses"),
        pipeline_id=original.pipeline_id,
        pipeline_version=original.pipeline_version,
        pipeline_name=original.pipeline_name,
        status=SessionStatus.QUEUED,
        parent_session_id=original.session_id,
        root_session_id=root,
        rerun_strategy=request.strategy.value,
        skipped_jobs=selection.skipped_jobs,
        config_overrides=planned.overrides,
        recovery=request.recovery,
        rerun_request_hash=request.fingerprint or None,
        requested_by=request.requested_by,
        claim=inherited_claim(original, request.requested_by, utc_now()),
    )
    bound = store.claim_idempotency_key(request.idempotency_key, session.session_id)
    if bound != session.session_id:
        winner = _existing(store, request)
        if winner is None:
            raise ConflictError(
                "a concurrent identical rerun request is being created; retry",
                details={"idempotency_key": request.idempotency_key},
            )
        return winner, selection, False
    try:
        store.create_session(session)
        for job_id in selection.skipped_jobs:
            store.put_job_run(
                JobRun(
                    session_id=session.session_id,
                    job_id=job_id,
                    status=RunStatus.SKIPPED,
                    workdir=planned.workdirs.get(job_id),
                    skipped_reason=f"succeeded in {original.session_id}; its outputs are reused",
                )
            )
    except BaseException:
        store.release_idempotency_key(request.idempotency_key, session.session_id)
        raise
    return session, selection, True


def _existing(store: Store, request: RerunRequest) -> Session | None:
    """The session the request's idempotency key already names, if it exists; CONFLICT when
    that key was used for a different request (it must never hand back someone else's rerun)."""
    bound = store.find_idempotency_key(request.idempotency_key)
    session = store.get_session(bound) if bound else None
    if session is None or not request.fingerprint:
        return session
    if session.rerun_request_hash not in (None, request.fingerprint):
        raise ConflictError(
            f"idempotency key {request.idempotency_key} was used for a different request "
            f"(rerun {session.session_id} of {session.parent_session_id}); use a new key",
            details={
                "idempotency_key": request.idempotency_key,
                "session_id": session.session_id,
                "original_session_id": session.parent_session_id,
            },
        )
    return session
