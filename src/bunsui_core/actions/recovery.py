"""Recovery actions: suggest ranked plans for a failed session; execute one by id."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from bunsui_core.actions._lookups import require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.errors import AnalyzeInput, analyze
from bunsui_core.actions.gateway import validation_details
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import InvalidArgumentError, NotFoundError
from bunsui_core.governance.previews import Preview
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.recovery import RecoveryPlan
from bunsui_core.recovery import executor
from bunsui_core.recovery.executor import StepResult
from bunsui_core.recovery.overrides import effective_overrides
from bunsui_core.recovery.planner import suggest_plans


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


def _step_preview(ctx: ActionContext, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """What a step would change: its action's own preview (the code a ticket binds)."""
    action = REGISTRY.get(name)
    if action is None or action.preview is None:
        return {}
    try:
        args = action.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise InvalidArgumentError(
            f"invalid arguments for step {name}", details=validation_details(exc)
        ) from None
    preview = action.preview(ctx, args)
    return {"summary": preview.summary, **preview.effect}


def _dry_run(ctx: ActionContext, args: ExecuteInput) -> tuple[RecoveryPlan, list[StepResult]]:
    plan = ctx.store.get_recovery_plan(args.plan_id)
    if plan is None:
        raise NotFoundError(
            f"recovery plan {args.plan_id} not found", details={"plan_id": args.plan_id}
        )
    steps = executor.dry_run(
        plan, REGISTRY, lambda name, kw: _step_preview(ctx, name, kw), args.step
    )
    return plan, steps


def preview_execute(ctx: ActionContext, args: ExecuteInput) -> Preview:
    """Each step of the plan: its command, action, arguments and what it would change."""
    plan, steps = _dry_run(ctx, args)
    executor.check_executable(plan)
    summaries = [str((s.result or {}).get("summary") or f"{s.action} {s.arguments}") for s in steps]
    return Preview(
        summary=f"recovery:execute {plan.plan_id} @ {plan.session_id}: {len(steps)} step(s): "
        + "; ".join(summaries),
        effect={
            "plan_id": plan.plan_id,
            "session_id": plan.session_id,
            "steps": [s.model_dump(mode="json", exclude={"status", "error"}) for s in steps],
        },
    )


@REGISTRY.define(
    "recovery:execute",
    title="Execute a recovery plan",
    input_model=ExecuteInput,
    output_model=ExecuteOutput,
    effect=Effect.WRITE,
    cli_arguments=("plan_id",),
    preview_flag="dry_run",
    preview=preview_execute,
)
def execute(ctx: ActionContext, args: ExecuteInput) -> ExecuteOutput:
    """Carry out a stored recovery plan. Dry run by default: shows each step's command and
    exactly what it would change. With dry_run false, runs the steps in order (or only
    `step`) through the same checks as any call; if a step fails, config changes made by
    earlier steps are rolled back. Plans that need a person first are refused."""
    if args.dry_run:
        plan, steps = _dry_run(ctx, args)
        return ExecuteOutput(plan_id=plan.plan_id, dry_run=True, steps=steps)
    plan = ctx.store.get_recovery_plan(args.plan_id)
    if plan is None:
        raise NotFoundError(
            f"recovery plan {args.plan_id} not found", details={"plan_id": args.plan_id}
        )
    steps = executor.execute(plan, REGISTRY, ctx.invoke, args.step)
    return ExecuteOutput(plan_id=plan.plan_id, dry_run=False, steps=steps)
