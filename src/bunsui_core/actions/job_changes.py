"""Actions that change how a session's jobs are treated: config overrides and manual marks."""

from __future__ import annotations

import json
import re
import shlex
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from bunsui_core.actions._lookups import require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import InvalidArgumentError, InvalidTransitionError, NotFoundError
from bunsui_core.governance.previews import Preview
from bunsui_core.model.overrides import SPECIAL_PARAMETERS
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import JobOverride, JobRun, RunStatus, Session, utc_now
from bunsui_core.recovery.overrides import (
    PLANNED_OVERRIDES,
    OverrideChange,
    describe_changes,
    plan_override,
)


class UpdateConfigInput(ActionInput):
    """New limits or parameters for a job's reruns."""

    job_id: str = Field(description="Job to change.")
    session_id: str = Field(description="Session whose reruns get the change.")
    memory: int | None = Field(None, ge=16, le=1_048_576, description="Memory limit in MiB.")
    timeout: int | None = Field(None, ge=1, le=7 * 24 * 3600, description="Timeout in seconds.")
    batch_size: int | None = Field(None, ge=1, description="parameters.batch_size.")
    param: dict[str, str] = Field(
        default_factory=dict,
        description="Other parameters, key=value (JSON values). Keys an operation type treats "
        "specially (command, env, memory, cpu, ...) are refused: see job update-command.",
    )
    revert_to: int | None = Field(
        None, ge=0, description="Restore override version N (0 = no override) instead."
    )
    reason: str | None = Field(None, max_length=500, description="Why, for the audit trail.")

    @field_validator("param")
    @classmethod
    def _no_special_keys(cls, value: dict[str, str]) -> dict[str, str]:
        """A parameter that is really a command, environment or limit must not hide behind
        a harmless-looking config change."""
        reserved = sorted(SPECIAL_PARAMETERS & value.keys())
        if reserved:
            msg = (
                f"param {', '.join(reserved)} is reserved: change a command or environment "
                "with job update-command (--command, --env), memory with --memory"
            )
            raise ValueError(msg)
        return value


class UpdateCommandInput(ActionInput):
    """A new argv or environment for a job's reruns."""

    job_id: str = Field(description="Job to change.")
    session_id: str = Field(description="Session whose reruns get the change.")
    operation_id: str | None = Field(
        None, description="Operation whose argv changes (default: the job's only operation)."
    )
    command: str | None = Field(
        None,
        min_length=1,
        description="New argv: a JSON list, or a command line split like a shell would "
        "(never run by a shell).",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables to set, NAME=value."
    )
    reason: str | None = Field(None, max_length=500, description="Why, for the audit trail.")

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        """Only names a process environment can hold."""
        bad = sorted(k for k in value if not ENV_NAME.fullmatch(k))
        if bad:
            msg = f"not environment variable names: {', '.join(bad)}"
            raise ValueError(msg)
        return value


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def _parse_argv(command: str) -> list[str]:
    """`["python", "x.py"]` or `python x.py`: the argv, or INVALID_ARGUMENT."""
    try:
        argv = json.loads(command) if command.lstrip().startswith("[") else shlex.split(command)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"command is neither a JSON list nor a splittable command line: {exc}",
            details={"field": "command"},
        ) from None
    if not argv or not all(isinstance(a, str) for a in argv):
        raise InvalidArgumentError(
            "command must be a non-empty list of strings", details={"field": "command"}
        )
    return argv


def _config_change(args: UpdateConfigInput) -> JobOverride:
    parameters = {k: _parse_param(v) for k, v in args.param.items()}
    if args.batch_size is not None:
        parameters["batch_size"] = args.batch_size
    return JobOverride(memory_mb=args.memory, timeout_seconds=args.timeout, parameters=parameters)


def _command_change(pipeline: Pipeline, args: UpdateCommandInput) -> JobOverride:
    if args.command is None and not args.env:
        raise InvalidArgumentError(
            "nothing to change: give --command or --env", details={"job_id": args.job_id}
        )
    if args.command is None:
        return JobOverride(env=args.env)
    if args.job_id not in {j.job_id for j in pipeline.jobs}:
        raise NotFoundError(
            f"job {args.job_id} not in session {args.session_id}",
            details={"job_id": args.job_id},
        )
    operations = [o.operation_id for o in pipeline.job(args.job_id).operations]
    operation_id = args.operation_id or (operations[0] if len(operations) == 1 else None)
    if operation_id is None:
        raise InvalidArgumentError(
            f"job {args.job_id} has {len(operations)} operations: name one with --operation-id",
            details={"operations": operations},
        )
    if operation_id not in operations:
        raise NotFoundError(
            f"operation {operation_id} not in job {args.job_id}",
            details={"operation_id": operation_id, "operations": operations},
        )
    return JobOverride(command={operation_id: _parse_argv(args.command)}, env=args.env)


def _planned(
    ctx: ActionContext, args: UpdateConfigInput | UpdateCommandInput
) -> tuple[Session, Pipeline, OverrideChange]:
    """The override change a call would record: its preview and its handler both use this."""
    session = require_session(ctx.store, args.session_id)
    pipeline = session_pipeline(ctx.store, session).pipeline
    if isinstance(args, UpdateConfigInput):
        change, revert_to = _config_change(args), args.revert_to
    else:
        change, revert_to = _command_change(pipeline, args), None
    planned = plan_override(
        ctx.store,
        session,
        pipeline,
        args.job_id,
        change,
        revert_to=revert_to,
        actor=ctx.actor,
        reason=args.reason,
    )
    return session, pipeline, planned


def override_preview(ctx: ActionContext, args: UpdateConfigInput | UpdateCommandInput) -> Preview:
    """The job's effective config before -> after the change (argv, env, limits,
    parameters), from the code that records it."""
    session, _, planned = _planned(ctx, args)
    ctx.read_once.setdefault(PLANNED_OVERRIDES, []).append(planned.version)
    name = "job:update-config" if isinstance(args, UpdateConfigInput) else "job:update-command"
    return Preview(
        summary=f"{name} {args.job_id} @ {session.session_id}: {describe_changes(planned.diff)}",
        effect={
            "session_id": session.session_id,
            "job_id": args.job_id,
            "override_version": planned.version.version,
            "diff": planned.diff,
            "before": planned.before,
            "after": planned.after,
        },
    )


def _record(ctx: ActionContext, args: UpdateConfigInput | UpdateCommandInput) -> UpdateConfigOutput:
    session, _, planned = _planned(ctx, args)
    ctx.store.add_override_version(planned.version)
    version = planned.version
    return UpdateConfigOutput(
        session_id=session.session_id,
        job_id=args.job_id,
        override_version=version.version,
        override=version.override,
        diff=planned.diff,
        revert_command=f"bunsui job update-config {args.job_id} --session-id "
        f"{session.session_id} --revert-to {version.version - 1}",
    )


@REGISTRY.define(
    "job:update-config",
    title="Change a job's config for reruns",
    input_model=UpdateConfigInput,
    output_model=UpdateConfigOutput,
    effect=Effect.WRITE,
    cli_arguments=("job_id",),
    preview=override_preview,
)
def update_config(ctx: ActionContext, args: UpdateConfigInput) -> UpdateConfigOutput:
    """Layer an override (memory MiB, timeout seconds, batch_size, other parameters) on a
    job of a session; reruns of that session use it. Each change is a new version, shown as
    a before/after diff, and can be reverted (revert_to). The stored pipeline is untouched.
    Commands and environment are not parameters: job update-command changes those."""
    return _record(ctx, args)


@REGISTRY.define(
    "job:update-command",
    title="Change a job's command or environment for reruns",
    input_model=UpdateCommandInput,
    output_model=UpdateConfigOutput,
    effect=Effect.WRITE,
    destructive=True,
    cli_arguments=("job_id",),
    preview=override_preview,
)
def update_command(ctx: ActionContext, args: UpdateCommandInput) -> UpdateConfigOutput:
    """Replace the argv of a job's operation and/or set environment variables for that
    session's reruns: a new override version, diffed and revertable (job update-config
    --revert-to). This changes what code runs, so the default policy keeps it for humans."""
    return _record(ctx, args)


class MarkStatus(StrEnum):
    """What a person can assert about a job."""

    SUCCEEDED = "succeeded"


class MarkInput(ActionInput):
    """A job fixed outside bunsui."""

    job_id: str = Field(description="Job that a person fixed.")
    session_id: str = Field(description="Session it belongs to.")
    status: MarkStatus = Field(description="succeeded: a checkpoint rerun will skip it.")
    reason: str = Field(min_length=3, max_length=1000, description="What was done, by whom.")


def _marked_job(ctx: ActionContext, args: MarkInput) -> dict[str, JobRun]:
    """The session's job runs, once the session has finished and has a run of the job."""
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
    return runs


def preview_mark(ctx: ActionContext, args: MarkInput) -> Preview:
    """The job whose recorded status changes, from what to what."""
    run = _marked_job(ctx, args)[args.job_id]
    return Preview(
        summary=f"job:mark {args.job_id} @ {args.session_id}: {run.status}→{args.status}; "
        "a checkpoint rerun will skip it",
        effect={
            "session_id": args.session_id,
            "job_id": args.job_id,
            "status_before": str(run.status),
            "status_after": str(args.status),
        },
    )


@REGISTRY.define(
    "job:mark",
    title="Mark a job as fixed by hand",
    input_model=MarkInput,
    output_model=JobRun,
    effect=Effect.WRITE,
    cli_arguments=("job_id",),
    preview=preview_mark,
)
def mark(ctx: ActionContext, args: MarkInput) -> JobRun:
    """Record that a person fixed a job outside bunsui (its outputs exist), so a later
    checkpoint rerun skips it. Only for finished sessions; the reason is kept."""
    runs = _marked_job(ctx, args)
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
