"""Rerun actions: `job rerun` and `session rerun` (one session or many)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.diagnosis.vocabulary import RecoveryAction
from bunsui_core.engine.dispatch import check_can_run, launch
from bunsui_core.engine.project_jobs import dbt_rerun_nodes
from bunsui_core.errors import BunsuiError, InvalidArgumentError, NotFoundError
from bunsui_core.governance.previews import Preview
from bunsui_core.model.dbt_nodes import NodeSplit
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import JobOverride, RecoveryContext, Session, SessionStatus
from bunsui_core.recovery.overrides import (
    PLANNED_OVERRIDES,
    describe_changes,
    diff,
    job_settings,
    operation_settings,
)
from bunsui_core.recovery.rerun import (
    RerunRequest,
    RerunStrategy,
    create_rerun,
    estimate_minutes,
    idempotency_key,
    plan_rerun,
    recorded_durations,
    request_fingerprint,
)
from bunsui_core.store.base import SessionFilter

BULK_LIMIT = 100


class RerunOutput(ActionOutput):
    """The design's rerun shape, plus the new session's id."""

    rerun_id: str = Field(description="Id of this rerun request.")
    session_id: str = Field(description="The new session (use with session describe).")
    original_session_id: str = Field(description="The session being rerun.")
    strategy: RerunStrategy = Field(description="checkpoint, failed-only or full.")
    skipped_jobs: list[str] = Field(description="Succeeded before: not executed, outputs reused.")
    jobs_to_run: list[str] = Field(description="Jobs the new session executes.")
    status: SessionStatus = Field(description="Status of the new session.")
    estimated_duration_minutes: float | None = Field(
        description="Critical path of recorded durations; null when a job has none."
    )
    created: bool = Field(
        description="False when this repeats an earlier identical request "
        "(idempotency): the earlier rerun is returned."
    )
    idempotency_key: str = Field(description="Key that makes repeating this request safe.")
    dbt_nodes: dict[str, NodeSplit] = Field(
        default_factory=dict,
        description="dbt jobs that continue where they failed: per job, the nodes run again "
        "(failed or skipped) and those left alone (succeeded). Other dbt jobs run in full.",
    )


class _RerunOptions(ActionInput):
    idempotency_key: str | None = Field(
        None,
        min_length=8,
        max_length=128,
        description="Repeat-safe key; derived from the request when omitted.",
    )
    recovery_action: RecoveryAction | None = Field(
        None, description="The remediation this rerun carries out, so its outcome is learned."
    )
    error_id: str | None = Field(
        None, description="The error being remedied (with recovery_action)."
    )
    wait: bool = Field(False, description="Run in the foreground and return when finished.")


def _recovery_context(
    ctx: ActionContext, original: Session, job_id: str | None, options: _RerunOptions
) -> RecoveryContext | None:
    if options.recovery_action is None:
        return None
    errors = ctx.store.list_errors(original.session_id)
    if options.error_id:
        chosen = [e for e in errors if e.error_id == options.error_id]
        if not chosen:
            raise NotFoundError(
                f"error {options.error_id} not in session {original.session_id}",
                details={"error_id": options.error_id},
            )
    else:
        chosen = [e for e in errors if job_id is None or e.job_id == job_id]
        if not chosen:
            raise InvalidArgumentError(
                "recovery_action needs an error to learn from; this session has none for that job",
                details={"field": "recovery_action"},
            )
    error = chosen[-1]
    from bunsui_core.diagnosis.analyzer import classify_record  # noqa: PLC0415 - loads the catalog

    code = classify_record(error).error_code
    return RecoveryContext(
        error_id=error.error_id,
        error_code=code,
        fingerprint=error.fingerprint,
        action=options.recovery_action.value,
        job_id=error.job_id or job_id or "",
    )


@dataclass(frozen=True)
class _Rerun:
    """One rerun a request asks for: the same value drives its preview and its execution."""

    original: Session
    strategy: RerunStrategy
    from_jobs: set[str]
    extra: dict[str, JobOverride]
    key: str
    fingerprint: str


def _request(ctx: ActionContext, rerun: _Rerun, options: _RerunOptions) -> RerunRequest:
    job_for_learning = next(iter(rerun.from_jobs)) if len(rerun.from_jobs) == 1 else None
    return RerunRequest(
        strategy=rerun.strategy,
        from_jobs=rerun.from_jobs,
        extra_overrides=rerun.extra,
        recovery=_recovery_context(ctx, rerun.original, job_for_learning, options),
        idempotency_key=rerun.key,
        requested_by=ctx.actor,
        fingerprint=rerun.fingerprint,
    )


def _require_jobs(pipeline: Pipeline, rerun: _Rerun) -> None:
    unknown = sorted(rerun.from_jobs - {j.job_id for j in pipeline.jobs})
    if unknown:
        raise NotFoundError(
            f"job(s) {', '.join(unknown)} not in session {rerun.original.session_id}",
            details={"jobs": unknown, "session_id": rerun.original.session_id},
        )


def start_rerun(ctx: ActionContext, rerun: _Rerun, options: _RerunOptions) -> RerunOutput:
    """Create (or find) the rerun, start it, and describe it."""
    original = rerun.original
    version = session_pipeline(ctx.store, original)
    _require_jobs(version.pipeline, rerun)
    check_can_run(ctx.settings, version.pipeline)
    session, selection, created = create_rerun(
        ctx.store, original, version.pipeline, _request(ctx, rerun, options)
    )
    if created:
        session = launch(ctx.store, ctx.settings, session, wait=options.wait, progress=ctx.progress)
    durations = recorded_durations(ctx.store.list_job_runs(original.session_id))
    return RerunOutput(
        rerun_id="rerun-" + session.session_id.removeprefix("ses-"),
        session_id=session.session_id,
        original_session_id=original.session_id,
        strategy=rerun.strategy,
        skipped_jobs=selection.skipped_jobs,
        jobs_to_run=selection.jobs_to_run,
        status=session.status,
        estimated_duration_minutes=estimate_minutes(
            version.pipeline, selection.jobs_to_run, durations
        ),
        created=created,
        idempotency_key=rerun.key,
        dbt_nodes=dbt_rerun_nodes(
            ctx.store,
            original.session_id,
            version.pipeline,
            selection.jobs_to_run,
            full=rerun.strategy is RerunStrategy.FULL,
        ),
    )


def rerun_effect(
    ctx: ActionContext, rerun: _Rerun, options: _RerunOptions
) -> tuple[dict[str, Any], str]:
    """What `start_rerun` would do, and a one-line account of it: the jobs it runs (each
    with its effective argv, env, memory and timeout) and skips, from the same planning."""
    original = rerun.original
    version = session_pipeline(ctx.store, original)
    _require_jobs(version.pipeline, rerun)
    planned = plan_rerun(
        ctx.store,
        original,
        version.pipeline,
        _request(ctx, rerun, options),
        ctx.read_once.get(PLANNED_OVERRIDES, ()),
    )
    effective = apply_overrides(version.pipeline, planned.overrides)
    to_run = planned.selection.jobs_to_run
    dbt_nodes = dbt_rerun_nodes(
        ctx.store,
        original.session_id,
        version.pipeline,
        to_run,
        full=rerun.strategy is RerunStrategy.FULL,
    )
    changed = {
        job_id: describe_changes(
            diff(job_settings(version.pipeline, job_id), job_settings(effective, job_id))
        )
        for job_id in to_run
    }
    effect = {
        "original_session_id": original.session_id,
        "pipeline_id": original.pipeline_id,
        "pipeline_version": original.pipeline_version,
        "strategy": str(rerun.strategy),
        "jobs_to_run": to_run,
        "skipped_jobs": planned.selection.skipped_jobs,
        "jobs": {
            job_id: {
                op.operation_id: operation_settings(op) for op in effective.job(job_id).operations
            }
            for job_id in to_run
        },
        "idempotency_key": rerun.key,
        "existing_rerun": planned.existing.session_id if planned.existing else None,
        "dbt_nodes": {job: split.model_dump() for job, split in dbt_nodes.items()},
    }
    line = f"runs {', '.join(to_run) or 'nothing'}"
    if planned.selection.skipped_jobs:
        line += f"; skips {', '.join(planned.selection.skipped_jobs)}"
    line += "".join(
        f"; {job} retries {len(split.to_run)} dbt node(s), keeps {len(split.to_skip)}"
        for job, split in dbt_nodes.items()
    )
    line += "".join(f"; {j}: {c}" for j, c in changed.items() if c != "no change")
    if planned.existing is not None:
        line = f"returns existing rerun {planned.existing.session_id} ({line})"
    return effect, line


class JobRerunInput(_RerunOptions):
    """Which job to rerun, from which session."""

    job_id: str = Field(description="Job to rerun (its downstream reruns too).")
    session_id: str = Field(description="Session to rerun it from.")
    skip_successful: bool = Field(
        False,
        description="Skip jobs that succeeded (reusing their outputs); otherwise rerun everything.",
    )
    batch_size: int | None = Field(
        None, ge=1, description="Override parameters.batch_size of this job for the rerun."
    )


def _job_rerun(ctx: ActionContext, args: JobRerunInput) -> _Rerun:
    original = require_session(ctx.store, args.session_id)
    extra = (
        {args.job_id: JobOverride(parameters={"batch_size": args.batch_size})}
        if args.batch_size
        else {}
    )
    request = args.model_dump(mode="json", exclude={"idempotency_key", "wait"})
    return _Rerun(
        original=original,
        strategy=RerunStrategy.CHECKPOINT if args.skip_successful else RerunStrategy.FULL,
        from_jobs={args.job_id},
        extra=extra,
        key=args.idempotency_key or idempotency_key(original.session_id, request),
        fingerprint=request_fingerprint(original.session_id, request),
    )


def preview_job_rerun(ctx: ActionContext, args: JobRerunInput) -> Preview:
    """The rerun's jobs with their effective config, before anything is created."""
    rerun = _job_rerun(ctx, args)
    effect, line = rerun_effect(ctx, rerun, args)
    return Preview(
        summary=f"job:rerun {args.job_id} @ {rerun.original.session_id}: {line}", effect=effect
    )


@REGISTRY.define(
    "job:rerun",
    title="Rerun a job",
    input_model=JobRerunInput,
    output_model=RerunOutput,
    effect=Effect.WRITE,
    cli_arguments=("job_id",),
    preview=preview_job_rerun,
)
def rerun_job(ctx: ActionContext, args: JobRerunInput) -> RerunOutput:
    """Start a new session, linked to the original, that reruns a job and everything
    downstream of it; with skip_successful, jobs that already succeeded are not executed
    again and their outputs are reused. Applies the session's config overrides (job
    update-config). Refused while the original still runs. Repeating the same request returns
    the same rerun (idempotent)."""
    return start_rerun(ctx, _job_rerun(ctx, args), args)


class SessionRerunInput(_RerunOptions):
    """One session to rerun, or a filter selecting many."""

    session_id: str | None = Field(None, description="Session to rerun (or use filter).")
    from_job: str | None = Field(None, description="checkpoint: rerun from this job on.")
    strategy: RerunStrategy = Field(
        RerunStrategy.CHECKPOINT,
        description="checkpoint (skip what succeeded, rerun from "
        "from_job or the failures), failed-only, full.",
    )
    filter: SessionFilter | None = Field(None, description="Bulk: rerun every matching session.")
    from_failed: bool = Field(
        False, description="Bulk: rerun each from its failed jobs (strategy failed-only)."
    )
    limit: int = Field(BULK_LIMIT, ge=1, le=BULK_LIMIT, description="Bulk: most sessions.")


class BulkFailure(ActionOutput):
    """A session a bulk rerun could not rerun, and why."""

    session_id: str = Field(description="Session.")
    code: str = Field(description="Error code.")
    message: str = Field(description="Why.")


class RerunBatch(ActionOutput):
    """Reruns started by one request."""

    reruns: list[RerunOutput] = Field(description="One per rerun session.")
    failures: list[BulkFailure] = Field(description="Sessions that could not be rerun.")
    summary: str = Field(description="One line for people.")


def _session_reruns(ctx: ActionContext, args: SessionRerunInput) -> list[_Rerun]:
    """One rerun per session the request names (one, or every match of a filter)."""
    if (args.session_id is None) == (args.filter is None):
        raise InvalidArgumentError(
            "give a session id or a filter (bulk), not both",
            details={"fields": ["session_id", "filter"]},
        )
    strategy = RerunStrategy.FAILED_ONLY if args.from_failed else args.strategy
    if args.session_id is not None:
        originals = [require_session(ctx.store, args.session_id)]
    else:
        originals = ctx.store.list_sessions(
            args.filter or SessionFilter(), limit=args.limit
        ).sessions
    request = {
        **args.model_dump(
            mode="json", exclude={"idempotency_key", "wait", "filter", "limit", "session_id"}
        ),
        "caller_key": args.idempotency_key,
        "strategy": strategy.value,
    }
    # One caller key covers the whole request: each session gets its own derived key.
    return [
        _Rerun(
            original=original,
            strategy=strategy,
            from_jobs={args.from_job} if args.from_job else set(),
            extra={},
            key=idempotency_key(original.session_id, request),
            fingerprint=request_fingerprint(original.session_id, request),
        )
        for original in originals
    ]


def preview_session_rerun(ctx: ActionContext, args: SessionRerunInput) -> Preview:
    """Per session: the jobs it would run (with their effective config) and skip."""
    effects, lines = [], []
    for rerun in _session_reruns(ctx, args):
        try:
            effect, line = rerun_effect(ctx, rerun, args)
        except BunsuiError as exc:
            if args.session_id is not None:
                raise
            effect = {"original_session_id": rerun.original.session_id, "refused": exc.code}
            line = f"refused ({exc.code})"
        effects.append(effect)
        lines.append(f"{rerun.original.session_id}: {line}")
    if args.session_id is not None:
        return Preview(summary=f"session:rerun @ {lines[0]}", effect=effects[0])
    return Preview(
        summary=f"session:rerun of {len(lines)} session(s): " + " | ".join(lines),
        effect={
            "filter": args.filter.model_dump(mode="json") if args.filter else None,
            "reruns": effects,
        },
    )


@REGISTRY.define(
    "session:rerun",
    title="Rerun sessions",
    input_model=SessionRerunInput,
    output_model=RerunBatch,
    effect=Effect.WRITE,
    cli_arguments=("session_id",),
    preview=preview_session_rerun,
)
def rerun_sessions(ctx: ActionContext, args: SessionRerunInput) -> RerunBatch:
    """Rerun a session as a new linked session: checkpoint skips what succeeded and reruns
    from from_job (or from the failures) with everything downstream; failed-only reruns
    what did not succeed; full reruns all. With a filter instead of a session id, reruns
    every matching session (e.g. status=failed of one pipeline), each as its own rerun."""
    reruns, failures = [], []
    for rerun in _session_reruns(ctx, args):
        try:
            reruns.append(start_rerun(ctx, rerun, args))
        except BunsuiError as exc:
            if args.session_id is not None:
                raise
            failures.append(
                BulkFailure(
                    session_id=rerun.original.session_id, code=str(exc.code), message=exc.message
                )
            )
    return RerunBatch(
        reruns=reruns,
        failures=failures,
        summary=f"{len(reruns)} rerun(s) started, {len(failures)} refused",
    )
