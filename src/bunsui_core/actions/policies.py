"""Policy actions: what the policy in force decides for an actor, and why."""

from __future__ import annotations

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.governance import budgets
from bunsui_core.governance.policy import Decision, Limits
from bunsui_core.model.session import utc_now


class CheckInput(ActionInput):
    """Whose call to decide."""

    actor: str = Field(min_length=1, description="Actor name to check.")
    action: str = Field(pattern=r"^[a-z][a-z_-]*:[a-z][a-z_-]*$", description="resource:verb.")


@REGISTRY.define(
    "policy:check",
    title="Check the policy for one call",
    input_model=CheckInput,
    output_model=Decision,
    effect=Effect.READ,
    idempotent=True,
)
def check(ctx: ActionContext, args: CheckInput) -> Decision:
    """Say whether an actor may run an action: allow, approval_required or deny, the rule
    that decided (role, list, pattern, line) and every rule that matched."""
    return ctx.policy.decide(args.actor, args.action)


class ExplainInput(ActionInput):
    """Whose permissions to explain."""

    actor: str | None = Field(None, description="Actor to explain (default: yourself).")


class BudgetUsage(ActionOutput):
    """What counts against each budget right now."""

    reruns_last_hour: int = Field(description="Rerun requests in the last hour.")
    tickets_pending: int = Field(description="Tickets waiting for a decision.")
    claims_held: int = Field(description="Sessions the actor holds a live claim on.")


class Explanation(ActionOutput):
    """The policy in force, seen from one actor."""

    source: str = Field(description="Policy file.")
    policy_hash: str = Field(description="sha256 of the file (tickets record it).")
    read_only: bool = Field(description="Whether the policy forces read-only mode.")
    actor: str = Field(description="Actor explained.")
    kind: str | None = Field(description="human, agent, or null for an actor with no role.")
    roles: list[str] = Field(description="Roles the actor holds.")
    decisions: list[Decision] = Field(description="The decision for every action.")
    limits: Limits = Field(description="Budgets the actor's roles set (null: no limit).")
    usage: BudgetUsage = Field(description="How much of each budget the actor uses now.")


@REGISTRY.define(
    "policy:explain",
    title="Explain the policy for an actor",
    input_model=ExplainInput,
    output_model=Explanation,
    effect=Effect.READ,
    idempotent=True,
)
def explain(ctx: ActionContext, args: ExplainInput) -> Explanation:
    """Show the policy file in force and, for an actor (default: the caller), its roles, the
    decision with its deciding rule for every action bunsui offers, and its budgets (limits)
    with what it uses of each now."""
    actor = args.actor or ctx.actor
    policy = ctx.policy
    return Explanation(
        source=policy.source,
        policy_hash=policy.hash,
        read_only=policy.read_only,
        actor=actor,
        kind=policy.kind_of(actor),
        roles=[r.name for r in policy.roles_of(actor)],
        decisions=[policy.decide(actor, a.name) for a in REGISTRY],
        limits=policy.limits_of(actor),
        usage=BudgetUsage(
            reruns_last_hour=len(budgets.rerun_times(ctx.store, actor, now=utc_now(), limit=1000)),
            tickets_pending=len(
                ctx.store.list_tickets(status="pending", requested_by=actor, limit=1000)
            ),
            claims_held=len(budgets.held_claims(ctx.store, actor, limit=1000)),
        ),
    )
