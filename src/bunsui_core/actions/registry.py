"""The action registry: every capability declared once, for every adapter to expose."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from bunsui_core.actions.context import ActionContext
    from bunsui_core.governance.previews import Preview

ActionName = str
"""`resource:verb`, e.g. `session:list`: tool `session_list`, CLI `bunsui session list`."""

Handler = Callable[["ActionContext", Any], BaseModel]
HandlerT = TypeVar("HandlerT", bound=Callable[..., BaseModel])
"""A handler with its own argument and result types, kept by `define` for its callers."""
PreviewHook = Callable[["ActionContext", Any], "Preview"]
"""Computes what a call would do without changing anything (the action's dry run): the
gateway binds it to a ticket on request and recomputes it before executing the ticket."""


class Effect(StrEnum):
    """Whether an action changes anything; read-only mode and policy key off this."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Action:
    """One capability: its input and output models, its effect, and the handler doing the work."""

    name: ActionName
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    effect: Effect
    handler: Handler
    destructive: bool = False
    idempotent: bool = False
    cli_arguments: tuple[str, ...] = field(default=())
    cli_stdin: str | None = None
    """A text field the CLI reads from stdin when it is not given (`error classify`)."""
    bound_files: tuple[str, ...] = ()
    """Input fields naming files the action reads (pipeline files): an agent may name only
    files under the pipeline roots, and an approval ticket binds their content."""
    cli_json_lines: str | None = None
    """A list field the CLI prints as JSON lines, one item per line (`audit export`)."""
    preview_flag: str | None = None
    """A boolean input field that, when true, makes a write action change nothing (a dry
    run): such a call needs no ticket and is allowed in read-only mode."""
    preview: PreviewHook | None = None
    """The effect a ticket shows and binds; missing referenced things raise NOT_FOUND here,
    so a request naming them gets no ticket."""
    audited_outputs: tuple[str, ...] = ()
    """Output fields the audit entry keeps as the call's `outcome`: what it did that its
    arguments do not say (whose claim a forced takeover replaced)."""

    def is_preview(self, args: BaseModel) -> bool:
        """Whether this call only shows what it would do."""
        return self.preview_flag is not None and bool(getattr(args, self.preview_flag))

    def changes_state(self, args: BaseModel) -> bool:
        """Whether this call may write: governance applies in full."""
        return self.effect is Effect.WRITE and not self.is_preview(args)

    @property
    def resource(self) -> str:
        """`session` of `session:list`."""
        return self.name.split(":", 1)[0]

    @property
    def verb(self) -> str:
        """`list` of `session:list`."""
        return self.name.split(":", 1)[1]

    @property
    def tool_name(self) -> str:
        """The MCP tool name: `job:update-config` -> `job_update_config`."""
        return self.name.replace(":", "_").replace("-", "_")


class ActionRegistry:
    """Actions by name; registering a name twice is a programming error caught at import.

    `modules` maps each action to the module declaring it: a lookup imports that module on
    first use, so `bunsui session list` pays only for the module of `session:list`, while a
    recovery plan step or an MCP tool listing still finds every action.
    """

    def __init__(self, modules: Mapping[ActionName, str] | None = None) -> None:
        self._actions: dict[ActionName, Action] = {}
        self.modules: Mapping[ActionName, str] = modules or {}

    def names(self) -> frozenset[ActionName]:
        """Every action name; from `modules` when given, so checking a policy file does not
        import every action module on each command."""
        return frozenset(self.modules) or frozenset(a.name for a in self)

    def add(self, action: Action) -> Action:
        """Register an action; its name must be `resource:verb` and unused."""
        if action.name.count(":") != 1 or action.name in self._actions:
            msg = f"bad or duplicate action name {action.name!r}"
            raise ValueError(msg)
        self._actions[action.name] = action
        return action

    def load(self, resource: str | None = None) -> None:
        """Import the modules declaring `resource`'s actions (every resource when None)."""
        mine = {m for n, m in self.modules.items() if resource in (None, n.partition(":")[0])}
        for module in sorted(mine):
            importlib.import_module(f"{__package__}.{module}")

    def get(self, name: ActionName) -> Action | None:
        """The action, or None when no action has that name; imports only its own module."""
        if name not in self._actions and name in self.modules:
            importlib.import_module(f"{__package__}.{self.modules[name]}")
        return self._actions.get(name)

    def of_resource(self, resource: str) -> list[Action]:
        """The actions of one resource, sorted by name."""
        self.load(resource)
        mine = [a for a in self._actions.values() if a.resource == resource]
        return sorted(mine, key=lambda a: a.name)

    def __iter__(self) -> Iterator[Action]:
        """Every action (all resources loaded), sorted by name."""
        self.load()
        return iter(sorted(self._actions.values(), key=lambda a: a.name))

    def define(
        self,
        name: ActionName,
        *,
        title: str,
        input_model: type[BaseModel],
        output_model: type[BaseModel],
        effect: Effect,
        destructive: bool = False,
        idempotent: bool = False,
        cli_arguments: tuple[str, ...] = (),
        cli_stdin: str | None = None,
        preview_flag: str | None = None,
        cli_json_lines: str | None = None,
        bound_files: tuple[str, ...] = (),
        preview: PreviewHook | None = None,
        audited_outputs: tuple[str, ...] = (),
    ) -> Callable[[HandlerT], HandlerT]:
        """Decorator: the handler's docstring becomes the description an LLM reads."""

        def register(handler: HandlerT) -> HandlerT:
            self.add(
                Action(
                    name=name,
                    title=title,
                    description=" ".join((handler.__doc__ or "").split()),
                    input_model=input_model,
                    output_model=output_model,
                    effect=effect,
                    handler=handler,
                    destructive=destructive,
                    idempotent=idempotent,
                    cli_arguments=cli_arguments,
                    cli_stdin=cli_stdin,
                    preview_flag=preview_flag,
                    cli_json_lines=cli_json_lines,
                    bound_files=bound_files,
                    preview=preview,
                    audited_outputs=audited_outputs,
                )
            )
            return handler

        return register


ACTION_MODULES: dict[str, tuple[ActionName, ...]] = {
    "approvals": (
        "approval:approve",
        "approval:cancel",
        "approval:list",
        "approval:reject",
        "approval:show",
    ),
    "audit": ("audit:export", "audit:head", "audit:list", "audit:verify"),
    "aws": ("aws:doctor", "aws:init"),
    "claims": (
        "session:claim",
        "session:claims",
        "session:escalate",
        "session:release",
        "session:resolve-escalation",
    ),
    "errors": (
        "error:analyze",
        "error:classify",
        "error:label",
        "error:learn",
        "error:resolutions",
    ),
    "events": ("events:tail",),
    "insights": ("insight:apply", "insight:dismiss", "insight:list", "insight:show"),
    "job_changes": ("job:mark", "job:update-command", "job:update-config"),
    "jobs": ("job:describe", "job:list", "job:logs"),
    "notifications": ("notify:test",),
    "pipeline_insights": ("pipeline:cost", "pipeline:stats", "pipeline:update-config"),
    "pipelines": (
        "pipeline:describe",
        "pipeline:list",
        "pipeline:register",
        "pipeline:run",
        "pipeline:validate",
    ),
    "policies": ("policy:check", "policy:explain"),
    "recovery": ("recovery:execute", "recovery:suggest"),
    "reruns": ("job:rerun", "session:rerun", "session:rerun-many"),
    "sessions": ("session:cancel", "session:describe", "session:list", "session:sync"),
}
"""Which module (under bunsui_core.actions) declares which actions, known without importing
them: a call loads its own action's module only (a test keeps this true)."""

MODULE_OF: dict[ActionName, str] = {
    name: module for module, names in ACTION_MODULES.items() for name in names
}
ACTION_NAMES: frozenset[ActionName] = frozenset(MODULE_OF)
"""Every action's name (policy files are checked against these)."""

RESOURCE_MODULES: dict[str, tuple[str, ...]] = {
    resource: tuple(sorted({m for n, m in MODULE_OF.items() if n.partition(":")[0] == resource}))
    for resource in sorted({name.partition(":")[0] for name in MODULE_OF})
}
"""Which modules declare each resource's actions."""

REGISTRY = ActionRegistry(MODULE_OF)


def load_actions(resource: str | None = None) -> None:
    """Load the shared registry's actions for `resource` (every resource when None)."""
    REGISTRY.load(resource)
