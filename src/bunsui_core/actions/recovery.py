"""Recovery actions: suggest ranked plans for a failed session; execute one by id."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.errors import AnalyzeInput, analyze
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.engine.project_jobs import dbt_rerun_nodes
from bunsui_core.errors import NotFoundError
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.recovery import RecoveryPlan
from bunsui_core.model.session import JobOverride
from bunsui_core.recovery import executor
from bunsui_core.recovery.overrides import effective_overrides, set_override
from bunsui_core.recovery.planner import suggest_plans
from bunsui_core.recovery.rerun import RerunStrategy, select_jobs


class SuggestInput(ActionInput):
    """The failed session."""

    session_id: str = Field(description="Session id (ses-...).")


class SuggestOutput(ActionOutput):
    """Ranked plans, executable ones first."""

    session_id: str = Field(description="Session the plans are for.")
    recovery_plans: list[RecoveryPlan] = Field(
        description="Best first; run one with recovery execute PLAN_ID."
    )


@REGISTRY.define(
    "recovery:suggest",
    title="Suggest recovery plans",
    input_model=SuggestInput,
    output_model=SuggestOutput,
    effect=Effect.READ,
    idempotent=True,
)
def suggest(ctx: ActionContext, args: SuggestInput) -> SuggestOutput:
    """Propose ranked recovery plans for a failed session: each with a success probability
    (learned), estimated time, runnable `bunsui ...` steps with reasons, and concrete risks
    (new limits vs old, jobs that rerun, other running sessions). When nothing automatic
    applies (permissions, unknown errors, spent retry budget) the plan is an escalation that
    says what a person must check. Plans are stored; execute one by plan_id."""
    session = require_session(ctx.store, args.session_id)
    pipeline = apply_overrides(
        session_pipeline(ctx.store, session).pipeline, effective_overrides(ctx.store, session)
    )
    analysis = analyze(ctx, AnalyzeInput(session_id=session.session_id))
    return SuggestOutput(
        session_id=session.session_id,
        recovery_plans=suggest_plans(ctx.store, session, pipeline, analysis),
    )


class ExecuteInput(ActionInput):
    """Which plan, and how far."""

    plan_id: str = Field(description="Plan id from recovery suggest.")
    dry_run: bool = Field(
        True, description="Only show what would change (the default); pass --no-dry-run to act."
    )
    step: int | None = Field(None, ge=1, description="Run only this step (stepwise execution).")


class ExecuteOutput(ActionOutput):
    """What happened, step by step."""

    plan_id: str = Field(description="Plan executed.")
    dry_run: bool = Field(description="True when nothing was changed.")
    steps: list[executor.StepResult] = Field(
        description="Per step: command, action, arguments, status, result."
    )


def _preview(ctx: ActionContext, action: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """What a step would change, computed without writing."""
    if action == "job:update-config":
        session = require_session(ctx.store, arguments["session_id"])
        pipeline = session_pipeline(ctx.store, session).pipeline
        change = JobOverride(
            memory_mb=int(arguments["memory"]) if "memory" in arguments else None,
            timeout_seconds=int(arguments["timeout"]) if "timeout" in arguments else None,
        )
        _, diff = set_override(
            ctx.store,
            session,
            pipeline,
            arguments["job_id"],
            change,
            revert_to=None,
            actor=ctx.actor,
            reason=None,
            preview=True,
        )
        return {"diff": diff}
    if action in {"job:rerun", "session:rerun"}:
        session = require_session(ctx.store, arguments["session_id"])
        pipeline = session_pipeline(ctx.store, session).pipeline
        statuses = {r.job_id: r.status for r in ctx.store.list_job_runs(session.session_id)}
        from_jobs = {arguments["job_id"]} if "job_id" in arguments else set()
        strategy = (
            RerunStrategy.CHECKPOINT
            if arguments.get("skip_successful") or action == "session:rerun"
            else RerunStrategy.FULL
        )
        selection = select_jobs(pipeline, statuses, strategy, from_jobs)
        nodes = dbt_rerun_nodes(
            ctx.store,
            session.session_id,
            pipeline,
            selection.jobs_to_run,
            full=strategy is RerunStrategy.FULL,
        )
        return {
            "jobs_to_run": selection.jobs_to_run,
            "skipped_jobs": selection.skipped_jobs,
            "batch_size": arguments.get("batch_size"),
            "dbt_nodes": {job: split.model_dump() for job, split in nodes.items()},
        }
    return {}


@REGISTRY.define(
    "recovery:execute",
    title="Execute a recovery plan",
    input_model=ExecuteInput,
    output_model=ExecuteOutput,
    effect=Effect.WRITE,
    cli_arguments=("plan_id",),
    preview_flag="dry_run",
)
def execute(ctx: ActionContext, args: ExecuteInput) -> ExecuteOutput:
    """Carry out a stored recovery plan. Dry run by default: shows each step's command and
    exactly what it would change. With dry_run false, runs the steps in order (or only
    `step`) through the same checks as any call; if a step fails, config changes made by
    earlier steps are rolled back. Plans that need a person first are refused."""
    plan = ctx.store.get_recovery_plan(args.plan_id)
    if plan is None:
        raise NotFoundError(
            f"recovery plan {args.plan_id} not found", details={"plan_id": args.plan_id}
        )
    if args.dry_run:
        steps = executor.dry_run(plan, REGISTRY, lambda a, kw: _preview(ctx, a, kw), args.step)
    else:
        steps = executor.execute(plan, REGISTRY, ctx.invoke, args.step)
    return ExecuteOutput(plan_id=plan.plan_id, dry_run=args.dry_run, steps=steps)
