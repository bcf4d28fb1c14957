"""Insight actions: list and show what the run history suggests, apply it, or dismiss it.

`insight:apply` runs the insight's suggested command as a nested call through the gateway,
so the change is checked, audited (and, for an agent, approved) like any other call.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.command_line import parse_command_line
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Action, Effect
from bunsui_core.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidTransitionError,
    NotFoundError,
)
from bunsui_core.governance.file_access import PIPELINE_ID
from bunsui_core.governance.previews import Preview
from bunsui_core.insights.history import History
from bunsui_core.insights.model import Insight, InsightKind, pipeline_of
from bunsui_core.insights.review import baseline_of, review, with_state
from bunsui_core.model.insight import InsightState, InsightStatus
from bunsui_core.model.session import utc_now


class InsightListInput(ActionInput):
    """Which insights to list."""

    pipeline: str | None = Field(
        None, pattern=PIPELINE_ID.pattern, description="Only this pipeline (default: every one)."
    )
    kind: InsightKind | None = Field(None, description="preventive, cost or performance.")
    min_confidence: float = Field(0.0, ge=0, le=1, description="Only at least this confident.")
    status: InsightStatus | None = Field(None, description="open, applied or dismissed.")


class InsightList(ActionOutput):
    """Insights, most confident first."""

    insights: list[Insight] = Field(description="Each with evidence, suggestion, confidence.")


@REGISTRY.define(
    "insight:list",
    title="List insights from run history",
    input_model=InsightListInput,
    output_model=InsightList,
    effect=Effect.READ,
    idempotent=True,
)
def list_insights(ctx: ActionContext, args: InsightListInput) -> InsightList:
    """What the recent runs suggest doing, computed from the store on every call:
    preventive (memory or duration nearing its limit, flaky jobs, a version that never
    succeeded), cost (memory reserved far above use) and performance (the job bounding the
    wall time, jobs serialised by max_concurrent_jobs, retry waits, regressions). Each has
    the per-run evidence, the exact `bunsui ...` command that fixes it, an estimated effect
    and a confidence that says what it rests on (runs, fit, earlier outcomes)."""
    if args.pipeline is not None:
        history, found = review(ctx.store, args.pipeline)
        if history is None:
            raise NotFoundError(
                f"pipeline {args.pipeline} not found", details={"pipeline_id": args.pipeline}
            )
    else:
        pipelines = [p.pipeline_id for p in ctx.store.list_pipelines()]
        found = [i for pipeline_id in pipelines for i in review(ctx.store, pipeline_id)[1]]
    return InsightList(
        insights=[
            i
            for i in sorted(found, key=lambda i: (-i.confidence, i.insight_id))
            if (args.kind is None or i.kind is args.kind)
            and i.confidence >= args.min_confidence
            and (args.status is None or i.status is args.status)
        ]
    )


class InsightIdInput(ActionInput):
    """One insight."""

    insight_id: str = Field(description="Insight id (ins-<pipeline>-<8 hex>).")


def _find(ctx: ActionContext, insight_id: str) -> tuple[History, Insight]:
    """The insight as it stands now, with the history it was computed from; NOT_FOUND when
    the id is malformed or its finding no longer holds (and was never applied)."""
    pipeline_id = pipeline_of(insight_id)
    history, insights = review(ctx.store, pipeline_id) if pipeline_id else (None, [])
    match = next((i for i in insights if i.insight_id == insight_id), None)
    if history is None or match is None:
        raise NotFoundError(
            f"insight {insight_id} not found (or its evidence no longer holds)",
            details={"insight_id": insight_id},
        )
    return history, match


@REGISTRY.define(
    "insight:show",
    title="Show one insight",
    input_model=InsightIdInput,
    output_model=Insight,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("insight_id",),
)
def show(ctx: ActionContext, args: InsightIdInput) -> Insight:
    """One insight with its evidence per run (the table output adds a chart of it), the
    suggested command, the confidence basis and, once applied, the verdict on the runs since."""
    return _find(ctx, args.insight_id)[1]


class InsightApplyInput(InsightIdInput):
    """The insight to act on."""

    expected_command: str | None = Field(
        None,
        description="Refuse (CONFLICT) unless the suggestion is still exactly this command, so "
        "what was reviewed is what runs.",
    )
    dry_run: bool = Field(False, description="Only show the command and its diff; change nothing.")


class InsightApplied(ActionOutput):
    """What applying ran (or, in a dry run, would run)."""

    insight_id: str = Field(description="Insight applied.")
    command: str = Field(description="The suggested command.")
    action: str = Field(description="Action it runs.")
    arguments: dict[str, Any] = Field(description="Its arguments.")
    dry_run: bool = Field(description="True when nothing was changed.")
    result: dict[str, Any] = Field(description="The action's output, or the dry-run preview.")
    status: InsightStatus = Field(description="The insight's status now.")


def _suggested_call(insight: Insight) -> tuple[Action, dict[str, Any]]:
    """The suggestion's action and its arguments, typed as the action reads them (`--memory
    64` is the number 64), with the insight named as the reason where the action keeps one."""
    action, arguments = parse_command_line(insight.suggestion.command, REGISTRY)
    if "reason" in action.input_model.model_fields:
        arguments.setdefault("reason", f"insight {insight.insight_id}: {insight.title}"[:500])
    try:
        typed = action.input_model.model_validate(arguments)
    except ValidationError:
        raise InvalidArgumentError(
            f"insight {insight.insight_id} suggests a command that is not valid",
            details={"command": insight.suggestion.command},
        ) from None
    return action, typed.model_dump(mode="json", exclude_unset=True)


def preview_apply(ctx: ActionContext, args: InsightApplyInput) -> Preview:
    """The insight, the exact command it runs and that command's own preview (the pipeline
    diff): a suggestion that changes before approval makes the ticket stale."""
    _, insight = _find(ctx, args.insight_id)
    action, arguments = _suggested_call(insight)
    effect: dict[str, Any] = {
        "insight_id": insight.insight_id,
        "rule": insight.rule,
        "command": insight.suggestion.command,
        "action": action.name,
        "arguments": arguments,
    }
    files: dict[str, str] = {}
    if action.preview is not None:
        nested = action.preview(ctx, action.input_model.model_validate(arguments))
        effect["change"] = nested.effect
        files = nested.files
    return Preview(
        summary=f"insight:apply {insight.insight_id}: {insight.suggestion.command}",
        effect=effect,
        files=files,
    )


def preview_dismiss(ctx: ActionContext, args: InsightDismissInput) -> Preview:
    """Which insight is dismissed, and why."""
    _, insight = _find(ctx, args.insight_id)
    return Preview(
        summary=f"insight:dismiss {insight.insight_id}: {insight.title}",
        effect={"insight_id": insight.insight_id, "title": insight.title, "reason": args.reason},
    )


@REGISTRY.define(
    "insight:apply",
    title="Apply an insight's suggestion",
    input_model=InsightApplyInput,
    output_model=InsightApplied,
    effect=Effect.WRITE,
    cli_arguments=("insight_id",),
    preview_flag="dry_run",
    preview=preview_apply,
)
def apply(ctx: ActionContext, args: InsightApplyInput) -> InsightApplied:
    """Run the insight's suggested command through the ordinary actions (same policy,
    audit and approval as typing it). A change marks it applied with the baseline the next
    runs are compared against; the verdict (helped or not) then feeds the rule's confidence.
    A suggestion that only reads (logs, analysis) returns its output and leaves it open.
    An agent's apply is an approval ticket; pass expected_command to bind the exact change."""
    history, insight = _find(ctx, args.insight_id)
    if insight.status is InsightStatus.APPLIED:
        raise ConflictError(
            f"insight {insight.insight_id} is applied already",
            details={
                "insight_id": insight.insight_id,
                "outcome": insight.model_dump(mode="json")["outcome"],
            },
        )
    line = insight.suggestion.command
    if args.expected_command is not None and args.expected_command != line:
        raise ConflictError(
            f"insight {insight.insight_id} now suggests a different command",
            details={"expected": args.expected_command, "current": line},
        )
    action, arguments = _suggested_call(insight)
    status: InsightStatus = insight.status
    if args.dry_run:
        # the suggested action's own dry run; a suggestion that only reads changes nothing
        preview = action.preview_flag
        result = (
            ctx.invoke(action.name, {**arguments, preview: True}).model_dump(mode="json")
            if preview
            else {}
        )
    else:
        result = ctx.invoke(action.name, arguments).model_dump(mode="json")
        # a suggestion to look (logs, analysis, stats) changes nothing there is to judge:
        # the insight stays open until its cause is fixed or someone dismisses it
        if action.effect is not Effect.READ:
            status = _record_applied(ctx, history, insight, action.name, result)
    return InsightApplied(
        insight_id=insight.insight_id,
        command=line,
        action=action.name,
        arguments=arguments,
        dry_run=args.dry_run,
        result=result,
        status=status,
    )


def _record_applied(
    ctx: ActionContext, history: History, insight: Insight, action: str, result: dict[str, Any]
) -> InsightStatus:
    """Store the decision with the baseline the next runs are judged against."""
    ctx.store.put_insight_state(
        InsightState(
            insight_id=insight.insight_id,
            pipeline_id=insight.pipeline_id,
            rule=insight.rule,
            status=InsightStatus.APPLIED,
            actor=ctx.actor,
            snapshot=insight.model_dump(mode="json"),
            applied_at=utc_now(),
            applied_version=result.get("version") if action == "pipeline:update-config" else None,
            baseline=baseline_of(history, insight),
        )
    )
    return InsightStatus.APPLIED


class InsightDismissInput(InsightIdInput):
    """An insight not worth acting on, and why."""

    reason: str = Field(min_length=3, max_length=1000, description="Why it is dismissed.")


@REGISTRY.define(
    "insight:dismiss",
    title="Dismiss an insight",
    input_model=InsightDismissInput,
    output_model=Insight,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("insight_id",),
    preview=preview_dismiss,
)
def dismiss(ctx: ActionContext, args: InsightDismissInput) -> Insight:
    """Mark an insight dismissed with the reason; it stays listed (status dismissed) while
    its evidence holds, so filtering on status open hides it."""
    history, insight = _find(ctx, args.insight_id)
    if insight.status is InsightStatus.APPLIED:
        raise InvalidTransitionError(
            f"insight {insight.insight_id} is applied; its verdict is pending or recorded",
            details={"insight_id": insight.insight_id},
        )
    state = InsightState(
        insight_id=insight.insight_id,
        pipeline_id=insight.pipeline_id,
        rule=insight.rule,
        status=InsightStatus.DISMISSED,
        actor=ctx.actor,
        reason=args.reason,
        snapshot=insight.model_dump(mode="json"),
    )
    ctx.store.put_insight_state(state)
    return with_state(history, insight, state, holds=True)
