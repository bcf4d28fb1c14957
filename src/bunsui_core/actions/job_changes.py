"""Actions that change how a session's jobs are treated: config overrides and manual marks."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import InvalidTransitionError, NotFoundError
from bunsui_core.model.session import JobOverride, JobRun, RunStatus, utc_now
from bunsui_core.recovery.overrides import set_override


class UpdateConfigInput(ActionInput):
    """New limits or parameters for a job's reruns."""

    job_id: str = Field(description="Job to change.")
    session_id: str = Field(description="Session whose reruns get the change.")
    memory: int | None = Field(None, ge=16, le=1_048_576, description="Memory limit in MiB.")
    timeout: int | None = Field(None, ge=1, le=7 * 24 * 3600, description="Timeout in seconds.")
    batch_size: int | None = Field(None, ge=1, description="parameters.batch_size.")
    param: dict[str, str] = Field(
        default_factory=dict, description="Other parameters, key=value (JSON values)."
    )
    revert_to: int | None = Field(
        None, ge=0, description="Restore override version N (0 = no override) instead."
    )
    reason: str | None = Field(None, max_length=500, description="Why, for the audit trail.")


class UpdateConfigOutput(ActionOutput):
    """The override now in force and what it changed."""

    session_id: str = Field(description="Session whose reruns use it.")
    job_id: str = Field(description="Job changed.")
    override_version: int = Field(description="Version of this job's override (1, 2, ...).")
    override: JobOverride = Field(description="The full override now in force.")
    diff: dict[str, dict[str, Any]] = Field(description="Changed settings: {before, after}.")
    revert_command: str = Field(description="Command that undoes this change.")


def _parse_param(value: str) -> Any:
    """`--param limit=10` gives 10, `--param mode=fast` gives "fast": JSON when it parses."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@REGISTRY.define(
    "job:update-config",
    title="Change a job's config for reruns",
    input_model=UpdateConfigInput,
    output_model=UpdateConfigOutput,
    effect=Effect.WRITE,
    cli_arguments=("job_id",),
)
def update_config(ctx: ActionContext, args: UpdateConfigInput) -> UpdateConfigOutput:
    """Layer an override (memory MiB, timeout seconds, batch_size, other parameters) on a
    job of a session; reruns of that session use it. Each change is a new version, shown as
    a before/after diff, and can be reverted (revert_to). The stored pipeline is untouched."""
    session = require_session(ctx.store, args.session_id)
    pipeline = session_pipeline(ctx.store, session).pipeline
    parameters = {k: _parse_param(v) for k, v in args.param.items()}
    if args.batch_size is not None:
        parameters["batch_size"] = args.batch_size
    change = JobOverride(memory_mb=args.memory, timeout_seconds=args.timeout, parameters=parameters)
    version, changes = set_override(
        ctx.store,
        session,
        pipeline,
        args.job_id,
        change,
        revert_to=args.revert_to,
        actor=ctx.actor,
        reason=args.reason,
    )
    return UpdateConfigOutput(
        session_id=session.session_id,
        job_id=args.job_id,
        override_version=version.version,
        override=version.override,
        diff=changes,
        revert_command=f"bunsui job update-config {args.job_id} --session-id "
        f"{session.session_id} --revert-to {version.version - 1}",
    )


class MarkStatus(StrEnum):
    """What a person can assert about a job."""

    SUCCEEDED = "succeeded"


class MarkInput(ActionInput):
    """A job fixed outside bunsui."""

    job_id: str = Field(description="Job that a person fixed.")
    session_id: str = Field(description="Session it belongs to.")
    status: MarkStatus = Field(description="succeeded: a checkpoint rerun will skip it.")
    reason: str = Field(min_length=3, max_length=1000, description="What was done, by whom.")


@REGISTRY.define(
    "job:mark",
    title="Mark a job as fixed by hand",
    input_model=MarkInput,
    output_model=JobRun,
    effect=Effect.WRITE,
    cli_arguments=("job_id",),
)
def mark(ctx: ActionContext, args: MarkInput) -> JobRun:
    """Record that a person fixed a job outside bunsui (its outputs exist), so a later
    checkpoint rerun skips it. Only for finished sessions; the reason is kept."""
    session = require_session(ctx.store, args.session_id)
    if not session.status.is_terminal:
        raise InvalidTransitionError(
            f"session {args.session_id} is still {session.status}",
            details={"session_id": args.session_id},
        )
    runs = {r.job_id: r for r in ctx.store.list_job_runs(session.session_id)}
    if args.job_id not in runs:
        raise NotFoundError(
            f"job {args.job_id} has no run in {args.session_id}",
            details={"job_id": args.job_id, "jobs": sorted(runs)},
        )
    marked = runs[args.job_id].model_copy(
        update={
            "status": RunStatus.COMPLETED,
            "finished_at": utc_now(),
            "marked_by": ctx.actor,
            "skipped_reason": f"marked succeeded by {ctx.actor}: {args.reason}",
        }
    )
    ctx.store.put_job_run(marked)
    return marked
