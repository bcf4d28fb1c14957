"""Executing a stored plan step by step through the gateway, with rollback of config changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from bunsui_core.actions.command_line import parse_command_line
from bunsui_core.actions.registry import ActionRegistry
from bunsui_core.errors import BunsuiError, ErrorCode, InvalidArgumentError, RecoveryError
from bunsui_core.model.recovery import PlanStep, RecoveryPlan

Invoke = Callable[[str, dict[str, Any]], BaseModel]
Preview = Callable[[str, dict[str, Any]], dict[str, Any]]


class StepResult(BaseModel):
    """What one step did (or, in a dry run, would do)."""

    step: int = Field(description="Step number.")
    command: str = Field(description="The command line.")
    action: str = Field(description="Registry action it maps to.")
    arguments: dict[str, Any] = Field(description="Arguments it passes.")
    status: str = Field(description="would_run, done, failed, rolled_back or skipped.")
    result: dict[str, Any] | None = Field(None, description="Output, or the dry-run preview.")
    error: dict[str, Any] | None = Field(None, description="Error, when it failed.")


def _selected(plan: RecoveryPlan, only_step: int | None) -> list[PlanStep]:
    if only_step is None:
        return plan.steps
    chosen = [s for s in plan.steps if s.step == only_step]
    if not chosen:
        raise InvalidArgumentError(
            f"plan {plan.plan_id} has no step {only_step}",
            details={"steps": [s.step for s in plan.steps]},
        )
    return chosen


def dry_run(
    plan: RecoveryPlan, registry: ActionRegistry, preview: Preview, only_step: int | None = None
) -> list[StepResult]:
    """Parse and preview every step without changing anything."""
    results = []
    for step in _selected(plan, only_step):
        action, arguments = parse_command_line(step.command, registry)
        results.append(
            StepResult(
                step=step.step,
                command=step.command,
                action=action.name,
                arguments=arguments,
                status="would_run",
                result=preview(action.name, arguments),
            )
        )
    return results


def check_executable(plan: RecoveryPlan) -> None:
    """NOT_EXECUTABLE for a plan that needs a person first (an escalation)."""
    if not plan.executable:
        raise RecoveryError(
            f"plan {plan.plan_id} needs a person first: " + plan.description,
            code=ErrorCode.NOT_EXECUTABLE,
            details={"plan_id": plan.plan_id},
        )


def execute(
    plan: RecoveryPlan, registry: ActionRegistry, invoke: Invoke, only_step: int | None = None
) -> list[StepResult]:
    """Run the steps in order; if one fails, revert config changes earlier steps made."""
    check_executable(plan)
    results: list[StepResult] = []
    for step in _selected(plan, only_step):
        action, arguments = parse_command_line(step.command, registry)
        try:
            output = invoke(action.name, arguments).model_dump(mode="json")
        except BunsuiError as exc:
            results.append(
                StepResult(
                    step=step.step,
                    command=step.command,
                    action=action.name,
                    arguments=arguments,
                    status="failed",
                    error=exc.to_dict(),
                )
            )
            _roll_back(results, invoke)
            raise RecoveryError(
                f"step {step.step} of {plan.plan_id} failed: {exc.message}",
                code=ErrorCode.STEP_FAILED,
                details={
                    "plan_id": plan.plan_id,
                    "steps": [r.model_dump(mode="json") for r in results],
                },
            ) from None
        results.append(
            StepResult(
                step=step.step,
                command=step.command,
                action=action.name,
                arguments=arguments,
                status="done",
                result=output,
            )
        )
    return results


def _roll_back(results: list[StepResult], invoke: Invoke) -> None:
    """Undo config overrides made by earlier steps of this execution, newest first."""
    for done in reversed(results):
        if done.status != "done" or done.action != "job:update-config" or not done.result:
            continue
        invoke(
            "job:update-config",
            {
                "job_id": done.result["job_id"],
                "session_id": done.result["session_id"],
                "revert_to": done.result["override_version"] - 1,
                "reason": f"rollback of failed recovery step {done.step}",
            },
        )
        done.status = "rolled_back"
