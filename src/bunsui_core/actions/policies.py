"""Policy actions: what the policy in force decides for an actor, and why."""

from __future__ import annotations

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.governance.policy import Decision


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


class Explanation(ActionOutput):
    """The policy in force, seen from one actor."""

    source: str = Field(description="Policy file.")
    policy_hash: str = Field(description="sha256 of the file (tickets record it).")
    read_only: bool = Field(description="Whether the policy forces read-only mode.")
    actor: str = Field(description="Actor explained.")
    kind: str | None = Field(description="human, agent, or null for an actor with no role.")
    roles: list[str] = Field(description="Roles the actor holds.")
    decisions: list[Decision] = Field(description="The decision for every action.")


@REGISTRY.define(
    "policy:explain",
    title="Explain the policy for an actor",
    input_model=ExplainInput,
    output_model=Explanation,
    effect=Effect.READ,
    idempotent=True,
)
def explain(ctx: ActionContext, args: ExplainInput) -> Explanation:
    """Show the policy file in force and, for an actor (default: the caller), its roles and
    the decision with its deciding rule for every action bunsui offers."""
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
    )
