"""Compiling a policy file, failing closed: any problem is POLICY_INVALID naming its line.

Top level: `actors:` (actor name or fnmatch pattern -> role or list of roles; `$OS_USER`
stands for the local user), optional `read_only: true`, and every other key is a role block
with `kind` (human | agent, default agent: the kind that can never approve),
`allowed_actions`, `denied_actions`, `approval_required`. Without `actors:`, an actor named
like a role (`ai-agent` for `ai_agent`) holds it, so the design's file loads as written.
Only a policy not compiled before (see `policy_file`) pays for the YAML parser.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Iterator
from typing import Any

import yaml

from bunsui_core.config import os_user
from bunsui_core.governance.canonical import sha256_text
from bunsui_core.governance.policy import (
    APPROVE_ACTIONS,
    RESERVED_ACTIONS,
    RULE_LISTS,
    ActorBinding,
    ActorKind,
    Limits,
    Outcome,
    Policy,
    Role,
    Rule,
)
from bunsui_core.governance.policy_file import PolicyInvalidError

ROLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ROLE_KEYS = frozenset({"kind", "description", "limits", *RULE_LISTS})
OS_USER = "$OS_USER"

Problem = dict[str, Any]


def parse_policy(text: str, *, source: str, known_actions: Collection[str]) -> Policy:
    """Check a policy document; every problem is reported at once with its line."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        _fail(
            source, [{"line": line, "message": f"malformed YAML: {getattr(exc, 'problem', exc)}"}]
        )
    reader = _Reader(set(known_actions) | RESERVED_ACTIONS)
    policy = reader.read(root)
    if reader.problems:
        _fail(source, reader.problems)
    return Policy(source=source, hash=sha256_text(text), **policy)


def _fail(source: str, problems: list[Problem]) -> None:
    count = len(problems)
    first = problems[0]
    raise PolicyInvalidError(
        f"{source}: {count} problem{'s' if count != 1 else ''} in policy; first at line "
        f"{first['line']}: {first['message']}",
        details={"source": source, "problems": problems},
    )


class _Reader:
    """Walks the YAML node tree (not loaded data) so every problem keeps its line."""

    def __init__(self, known_actions: set[str]) -> None:
        self.known = known_actions
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append({"line": line, "message": message})

    def read(self, root: yaml.Node | None) -> dict[str, Any]:
        roles: dict[str, Role] = {}
        actors: list[ActorBinding] | None = None
        read_only = False
        if not isinstance(root, yaml.MappingNode):
            self.problem(root, "a policy is a mapping of role blocks (and `actors:`)")
            return {"roles": roles, "actors": [], "read_only": False}
        actors_node = None
        for key_node, value in self.entries(root):
            key = key_node.value
            if key == "actors":
                actors_node = value
            elif key == "read_only":
                read_only = self.boolean(value, "read_only")
            elif not ROLE_NAME.match(str(key)):
                self.problem(key_node, f"{key!r} is not a role name")
            else:
                role = self.role(key, value)
                if role is not None:
                    roles[key] = role
        if actors_node is not None:
            actors = self.actors(actors_node, roles)
        else:
            actors = [
                ActorBinding(pattern=name.replace("_", "-"), roles=[name], line=0) for name in roles
            ]
        return {"roles": roles, "actors": actors, "read_only": read_only}

    def entries(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """A mapping's entries; a key written twice is a problem, not a silent overwrite
        (a later `kind: human` must not quietly turn an agent role into an approver)."""
        first: dict[Any, int] = {}
        for key_node, value in node.value:
            key = getattr(key_node, "value", None)
            if not isinstance(key, str):
                self.problem(key_node, "keys must be plain text")
            elif key in first:
                self.problem(key_node, f"duplicate key {key!r} (first at line {first[key]})")
            else:
                first[key] = key_node.start_mark.line + 1
                yield key_node, value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        if isinstance(node, yaml.ScalarNode) and node.value in {"true", "false"}:
            return bool(node.value == "true")
        self.problem(node, f"{what} must be true or false")
        return False

    def role(self, name: str, node: yaml.Node) -> Role | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"role {name!r} must be a mapping of rule lists")
            return None
        kind = ActorKind.AGENT
        rules: list[Rule] = []
        limits = Limits()
        for key_node, value in self.entries(node):
            key = key_node.value
            if key not in ROLE_KEYS:
                self.problem(
                    key_node, f"unknown key {key!r} in role {name!r} (known: {sorted(ROLE_KEYS)})"
                )
            elif key == "kind":
                if isinstance(value, yaml.ScalarNode) and value.value in set(ActorKind):
                    kind = ActorKind(value.value)
                else:
                    self.problem(value, "kind must be human or agent")
            elif key in RULE_LISTS:
                rules.extend(self.rules(name, RULE_LISTS[key], value))
            elif key == "limits":
                limits = self.limits(name, value)
        role = Role(name=name, kind=kind, rules=rules, limits=limits)
        if kind is ActorKind.AGENT:
            self.agents_cannot_approve(role, node)
        return role

    def limits(self, role: str, node: yaml.Node) -> Limits:
        """`limits:` of a role: known budget names mapped to non-negative integers."""
        known = sorted(Limits.model_fields)
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"limits of role {role!r} must map {known} to numbers")
            return Limits()
        values: dict[str, int] = {}
        for key_node, value in self.entries(node):
            if key_node.value not in Limits.model_fields:
                self.problem(key_node, f"unknown limit {key_node.value!r} (known: {known})")
            elif isinstance(value, yaml.ScalarNode) and value.value.isdigit():
                values[key_node.value] = int(value.value)
            else:
                self.problem(value, f"limit {key_node.value!r} must be a whole number >= 0")
        return Limits(**values)

    def rules(self, role: str, outcome: Outcome, node: yaml.Node) -> list[Rule]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, "a rule list must be a list of action patterns")
            return []
        rules = []
        for item in node.value:
            pattern = item.value if isinstance(item, yaml.ScalarNode) else None
            if not isinstance(pattern, str) or not pattern:
                self.problem(item, "an action pattern must be text like `session:list`")
            elif ":" not in pattern and pattern != "*":
                self.problem(item, f"{pattern!r} is not `resource:verb` (or `*`)")
            elif not any(fnmatch.fnmatchcase(a, pattern) for a in self.known):
                self.problem(item, f"{pattern!r} matches no bunsui action")
            else:
                rules.append(
                    Rule(role=role, outcome=outcome, pattern=pattern, line=item.start_mark.line + 1)
                )
        return rules

    def agents_cannot_approve(self, role: Role, node: yaml.Node) -> None:
        """An agent role whose rules would let it decide a ticket is refused outright."""
        for action in APPROVE_ACTIONS:
            matching = [r for r in role.rules if r.matches(action)]
            if matching and not any(r.outcome is Outcome.DENY for r in matching):
                self.problem(
                    node,
                    f"role {role.name!r} is of kind agent but {matching[0]} lets it reach "
                    f"{action}; agents can never approve (deny it or make the role human)",
                )

    def actors(self, node: yaml.Node, roles: dict[str, Role]) -> list[ActorBinding]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "actors must map actor names (or patterns) to roles")
            return []
        bindings = []
        for key_node, value in self.entries(node):
            names = self.role_names(value)
            for name in names:
                if name not in roles:
                    self.problem(value, f"actor {key_node.value!r} names unknown role {name!r}")
            pattern = str(key_node.value)
            if pattern == OS_USER:
                pattern = os_user()
            bindings.append(
                ActorBinding(pattern=pattern, roles=names, line=key_node.start_mark.line + 1)
            )
        if any(str(k.value) == OS_USER for k, _ in self.entries(node)):
            self.local_user_is_not_an_agent(node, bindings, roles)
        return bindings

    def local_user_is_not_an_agent(
        self, node: yaml.Node, bindings: list[ActorBinding], roles: dict[str, Role]
    ) -> None:
        """`$OS_USER` holds human roles; an agent role bound to the same name (directly or by
        a pattern) would make the local user an agent, or an agent account the approver."""
        user = os_user()
        for binding in bindings:
            agent_roles = [
                name
                for name in binding.roles
                if name in roles and roles[name].kind is ActorKind.AGENT
            ]
            if agent_roles and fnmatch.fnmatchcase(user, binding.pattern):
                self.problem(
                    node,
                    f"$OS_USER ({user!r}) is also bound to agent role {agent_roles[0]!r} "
                    f"(line {binding.line}): one name cannot be both the local user and an agent",
                )
                return

    def role_names(self, node: yaml.Node) -> list[str]:
        if isinstance(node, yaml.ScalarNode):
            return [node.value]
        if isinstance(node, yaml.SequenceNode) and all(
            isinstance(n, yaml.ScalarNode) for n in node.value
        ):
            return [n.value for n in node.value]
        self.problem(node, "an actor's roles are a role name or a list of role names")
        return []
