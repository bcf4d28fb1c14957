"""Who may do what: roles of allowed / denied / approval-required action patterns.

Decision for (actor, action): every rule of every role the actor holds that matches the
action is considered; an explicit deny wins, then approval_required, then allow; nothing
matching means deny. Patterns are `resource:verb` with fnmatch wildcards (`session:*`, `*`).
"""

from __future__ import annotations

import fnmatch
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

APPROVE_ACTIONS = ("approval:approve", "approval:reject")
"""Decisions on tickets: a role of kind agent may never be able to make them."""

RESERVED_ACTIONS = frozenset({"pipeline:delete", "config:modify_critical"})
"""Names the design's policy denies that bunsui does not offer as actions; policies may name
them (so the design's file loads unchanged) and they are always refused."""


class ActorKind(StrEnum):
    """Humans can approve; agents never can."""

    HUMAN = "human"
    AGENT = "agent"


class Outcome(StrEnum):
    """What the policy says about one call."""

    ALLOW = "allow"
    APPROVAL_REQUIRED = "approval_required"
    DENY = "deny"


RULE_LISTS: dict[str, Outcome] = {
    "denied_actions": Outcome.DENY,
    "approval_required": Outcome.APPROVAL_REQUIRED,
    "allowed_actions": Outcome.ALLOW,
}
"""The lists of a role block, strongest first."""


class Rule(BaseModel):
    """One pattern in one list of one role, with where it was written."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    role: str
    outcome: Outcome
    pattern: str
    line: int

    def __str__(self) -> str:
        lists = {v: k for k, v in RULE_LISTS.items()}
        return f"{self.role}.{lists[self.outcome]} {self.pattern!r} (line {self.line})"

    def matches(self, action: str) -> bool:
        """Whether the pattern covers the action name."""
        return fnmatch.fnmatchcase(action, self.pattern)


class Limits(BaseModel):
    """Budgets a role sets on each actor holding it (`limits:`); None means no limit."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    reruns_per_hour: int | None = Field(
        None, ge=0, description="Rerun requests (job/session rerun, recovery execute) per hour."
    )
    tickets_pending_max: int | None = Field(
        None, ge=0, description="Approval tickets the actor may have pending at once."
    )
    claims_max: int | None = Field(None, ge=0, description="Sessions the actor may hold at once.")

    def tightest(self, other: Limits) -> Limits:
        """The stricter of two sets of limits, field by field (an actor with several roles
        is held to the smallest budget any of them sets)."""
        merged: dict[str, int | None] = {}
        for name in type(self).model_fields:
            values = [v for v in (getattr(self, name), getattr(other, name)) if v is not None]
            merged[name] = min(values) if values else None
        return Limits(**merged)


class Role(BaseModel):
    """A named set of rules and the kind of actor holding it."""

    model_config = ConfigDict(defer_build=True)

    name: str
    kind: ActorKind
    rules: list[Rule]
    limits: Limits = Field(default_factory=Limits)


class ActorBinding(BaseModel):
    """`actors:` entry: an actor name or fnmatch pattern and the roles it grants."""

    model_config = ConfigDict(defer_build=True)

    pattern: str
    roles: list[str]
    line: int


class Decision(BaseModel):
    """The policy's answer, with the rule that decided it."""

    model_config = ConfigDict(defer_build=True)

    actor: str
    action: str
    outcome: Outcome
    kind: ActorKind | None = Field(description="None when the actor holds no role.")
    roles: list[str]
    rule: str = Field(description="The deciding rule, or why none applied.")
    considered: list[str] = Field(description="Every matching rule, strongest first.")


class Policy(BaseModel):
    """A loaded policy file."""

    model_config = ConfigDict(defer_build=True)

    source: str
    hash: str
    read_only: bool = False
    roles: dict[str, Role]
    actors: list[ActorBinding]

    def roles_of(self, actor: str) -> list[Role]:
        """Every role granted by every `actors:` entry matching the actor."""
        names: list[str] = []
        for binding in self.actors:
            if fnmatch.fnmatchcase(actor, binding.pattern):
                names.extend(r for r in binding.roles if r not in names)
        return [self.roles[name] for name in names]

    def kind_of(self, actor: str) -> ActorKind | None:
        """Agent if any role is an agent role; None for an actor with no role."""
        roles = self.roles_of(actor)
        if not roles:
            return None
        return ActorKind.AGENT if any(r.kind is ActorKind.AGENT for r in roles) else ActorKind.HUMAN

    def limits_of(self, actor: str) -> Limits:
        """The budgets every role of the actor sets, the strictest winning."""
        limits = Limits()
        for role in self.roles_of(actor):
            limits = limits.tightest(role.limits)
        return limits

    def decide(self, actor: str, action: str) -> Decision:
        """Default deny; deny beats approval_required beats allow, across all the actor's roles."""
        roles = self.roles_of(actor)
        strength = list(RULE_LISTS.values())
        matching = sorted(
            (rule for role in roles for rule in role.rules if rule.matches(action)),
            key=lambda rule: strength.index(rule.outcome),
        )
        base = {
            "actor": actor,
            "action": action,
            "kind": self.kind_of(actor),
            "roles": [r.name for r in roles],
            "considered": [str(r) for r in matching],
        }
        if action in RESERVED_ACTIONS:
            return Decision(
                **base, outcome=Outcome.DENY, rule=f"{action} is never allowed through bunsui"
            )
        if not roles:
            return Decision(
                **base, outcome=Outcome.DENY, rule=f"default deny: actor {actor!r} has no role"
            )
        if not matching:
            return Decision(
                **base,
                outcome=Outcome.DENY,
                rule=f"default deny: no rule of {', '.join(base['roles'])} matches {action}",
            )
        return Decision(**base, outcome=matching[0].outcome, rule=str(matching[0]))
