"""Turning an action of the vocabulary into concrete `bunsui ...` steps for one failed job."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from bunsui_core.diagnosis.vocabulary import RecoveryAction
from bunsui_core.model.pipeline import OperationType, Pipeline
from bunsui_core.model.recovery import PlanStep
from bunsui_core.recovery import sizing


@dataclass(frozen=True)
class FailedJob:
    """The failure a remedy answers."""

    session_id: str
    job_id: str | None
    error_id: str
    context: dict[str, Any]
    memory: sizing.MemoryHistory = field(default_factory=sizing.MemoryHistory)


@dataclass(frozen=True)
class Remedy:
    """Steps that carry out one action, and what they change."""

    action: RecoveryAction
    steps: list[PlanStep]
    summary: str
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def executable(self) -> bool:
        """False when a person must act first (fix code, data, permissions)."""
        return not any(step.requires_human for step in self.steps)


def command(*words: object) -> str:
    """A `bunsui` command line, quoted so it runs exactly as printed."""
    return shlex.join(["bunsui", *(str(w) for w in words)])


def _rerun(failed: FailedJob, action: RecoveryAction, *extra: object) -> str:
    if failed.job_id is None:
        return command(
            "session",
            "rerun",
            failed.session_id,
            "--strategy",
            "failed-only",
            "--recovery-action",
            action.value,
            "--error-id",
            failed.error_id,
        )
    return command(
        "job",
        "rerun",
        failed.job_id,
        "--session-id",
        failed.session_id,
        "--skip-successful",
        *extra,
        "--recovery-action",
        action.value,
        "--error-id",
        failed.error_id,
    )


def _batch_size(pipeline: Pipeline, job_id: str | None) -> int | None:
    if job_id is None:
        return None
    for op in pipeline.job(job_id).operations:
        value = op.config.parameters.get("batch_size")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _operation_type(pipeline: Pipeline, job_id: str | None) -> OperationType:
    if job_id is None:
        return OperationType.COMMAND
    return pipeline.job(job_id).operations[0].config.operation_type


def remedy_for(
    action: RecoveryAction, failed: FailedJob, pipeline: Pipeline, *, batch_size: int | None = None
) -> Remedy | None:
    """The steps for `action`, or None when it cannot apply (no batch to shrink, no memory
    value the target accepts, no job to change)."""
    builders = {
        RecoveryAction.INCREASE_MEMORY: _increase_memory,
        RecoveryAction.INCREASE_TIMEOUT: _increase_timeout,
        RecoveryAction.RETRY_WITH_SMALLER_BATCH: _smaller_batch,
    }
    if action in builders:
        if failed.job_id is None:
            return None
        current_batch = (
            batch_size if batch_size is not None else _batch_size(pipeline, failed.job_id)
        )
        return builders[action](failed, pipeline, current_batch)
    if action.retries:
        wait = (
            " once the upstream has recovered"
            if action is RecoveryAction.RETRY_WITH_BACKOFF
            else ""
        )
        return Remedy(
            action,
            [
                PlanStep(
                    step=1,
                    action="rerun",
                    command=_rerun(failed, action),
                    reason=f"Run the failed work again{wait}; what succeeded is skipped.",
                )
            ],
            summary=f"rerun {failed.job_id or 'the failed jobs'}{wait}",
        )
    return _human_fix(action, failed)


def _increase_memory(failed: FailedJob, pipeline: Pipeline, _batch: int | None) -> Remedy | None:
    ctx = failed.context
    limit = (
        ctx.get("memory_limit_mb")
        or ctx.get("lambda_memory_size_mb")
        or ctx.get("container_limit_mb")
    )
    peak = ctx.get("peak_rss_mb") or ctx.get("lambda_max_memory_used_mb") or ctx.get("used_mb")
    kind = _operation_type(pipeline, failed.job_id)
    required = ctx.get("required_mb")
    if kind is OperationType.LAMBDA:
        sized = sizing.lambda_memory(limit, peak, required, failed.memory)
    elif kind is OperationType.ECS:
        pair = sizing.fargate_memory(limit, peak, required, history=failed.memory)
        sized = pair[1] if pair else None
    else:
        sized = sizing.local_memory(limit, peak, required, history=failed.memory)
    if sized is None:
        return None
    steps = [
        PlanStep(
            step=1,
            action="update-config",
            command=command(
                "job",
                "update-config",
                failed.job_id,
                "--session-id",
                failed.session_id,
                "--memory",
                sized.value,
                "--reason",
                f"recovery for {failed.error_id}",
            ),
            reason=f"Memory {limit or '?'} -> {sized.value} MiB: {sized.reason}.",
        ),
        PlanStep(
            step=2,
            action="rerun",
            command=_rerun(failed, RecoveryAction.INCREASE_MEMORY),
            reason="Rerun the job and its downstream with the new limit; jobs that "
            "succeeded are skipped.",
        ),
    ]
    return Remedy(
        RecoveryAction.INCREASE_MEMORY,
        steps,
        summary=f"raise {failed.job_id} memory to {sized.value} MiB and rerun",
        changes={"memory_mb": (limit, sized.value)},
    )


def _increase_timeout(failed: FailedJob, _pipeline: Pipeline, _batch: int | None) -> Remedy | None:
    ctx = failed.context
    sized = sizing.longer_timeout(ctx.get("timeout_seconds"), ctx.get("elapsed_seconds"))
    if sized is None:
        return None
    steps = [
        PlanStep(
            step=1,
            action="update-config",
            command=command(
                "job",
                "update-config",
                failed.job_id,
                "--session-id",
                failed.session_id,
                "--timeout",
                sized.value,
                "--reason",
                f"recovery for {failed.error_id}",
            ),
            reason=f"Timeout -> {sized.value} s: {sized.reason}.",
        ),
        PlanStep(
            step=2,
            action="rerun",
            command=_rerun(failed, RecoveryAction.INCREASE_TIMEOUT),
            reason="Rerun with the longer timeout; jobs that succeeded are skipped.",
        ),
    ]
    return Remedy(
        RecoveryAction.INCREASE_TIMEOUT,
        steps,
        summary=f"raise {failed.job_id} timeout to {sized.value} s and rerun",
        changes={"timeout_seconds": (ctx.get("timeout_seconds"), sized.value)},
    )


def _smaller_batch(failed: FailedJob, _pipeline: Pipeline, batch: int | None) -> Remedy | None:
    if batch is None:
        return None
    ctx = failed.context
    sized = sizing.smaller_batch(
        batch,
        limit_mb=ctx.get("memory_limit_mb"),
        peak_mb=ctx.get("peak_rss_mb"),
        required_mb=ctx.get("required_mb"),
    )
    if sized is None:
        return None
    step = PlanStep(
        step=1,
        action="rerun",
        command=_rerun(
            failed, RecoveryAction.RETRY_WITH_SMALLER_BATCH, "--batch-size", sized.value
        ),
        reason=f"batch_size {batch} -> {sized.value}: {sized.reason}.",
    )
    return Remedy(
        RecoveryAction.RETRY_WITH_SMALLER_BATCH,
        [step],
        summary=f"rerun {failed.job_id} with batch_size {sized.value}",
        changes={"batch_size": (batch, sized.value)},
    )


HUMAN_FIXES = {
    RecoveryAction.FIX_PERMISSIONS: "grant the missing permission (see iam_action / "
    "iam_resource in the context) or refresh credentials",
    RecoveryAction.FIX_CONFIGURATION: "fix the configuration the error names (command, image, "
    "secret, endpoint)",
    RecoveryAction.FIX_CODE_OR_DATA: "fix the input data or the code that rejects it",
    RecoveryAction.ESCALATE: "read the logs and decide; bunsui does not recognise this failure "
    "well enough to act",
}


def _human_fix(action: RecoveryAction, failed: FailedJob) -> Remedy:
    what = HUMAN_FIXES[action]
    steps = [] if failed.job_id is None else [_inspect(failed, failed.job_id)]
    dbt = " (a dbt job reruns only its failed and skipped nodes)" if _is_dbt(failed) else ""
    steps.append(
        PlanStep(
            step=len(steps) + 1,
            action="rerun",
            command=_rerun(failed, action),
            reason=f"After a person has made the fix ({what}), rerun{dbt}.",
            requires_human=True,
        )
    )
    return Remedy(action, steps, summary=f"a person must {what}")


def _is_dbt(failed: FailedJob) -> bool:
    return "dbt_command" in failed.context


def _inspect(failed: FailedJob, job_id: str) -> PlanStep:
    """Look before fixing: a dbt job's nodes (and a failed test's rows), else the job's stderr."""
    ctx = failed.context
    if not _is_dbt(failed):
        return PlanStep(
            step=1,
            action="inspect",
            command=command(
                "job", "logs", job_id, "--session-id", failed.session_id, "--stream", "stderr"
            ),
            reason="Read what the job wrote before changing anything.",
        )
    if ctx.get("dbt_test"):
        reason = (
            f"Test {ctx['dbt_test']} found {ctx.get('failures', '?')} failing row(s) in "
            f"{ctx.get('model') or 'its model'}; failing_rows_query in the error's context "
            "shows them on the warehouse."
        )
    else:
        where = ":".join(str(ctx[k]) for k in ("file", "line") if k in ctx)
        reason = (
            "See every dbt node's status and message"
            + (f"; the error is at {where}" if where else "")
            + "."
        )
    return PlanStep(
        step=1,
        action="inspect",
        command=command("job", "describe", job_id, "--session-id", failed.session_id),
        reason=reason,
    )
