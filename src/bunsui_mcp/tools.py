"""MCP tools from the action registry: one tool per action the connection's actor may use.

Nothing here decides anything: schemas come from the action's models, annotations from its
effect, and every call goes through the gateway as the connection's actor, so a tool call and
the same CLI command behave identically (tickets, audit, read-only, errors).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bunsui_core.actions import REGISTRY, Action, Gateway
from bunsui_core.actions.command_line import parse_command_line
from bunsui_core.actions.gateway import validation_details
from bunsui_core.actions.registry import Effect
from bunsui_core.errors import BunsuiError, InvalidArgumentError, NotFoundError
from bunsui_core.governance.approvals import PendingApproval
from bunsui_core.governance.policy import Outcome

COMMAND_TOOL = "command_execute"

APPROVAL_NOTE = (
    " Under the current policy this needs a human's approval: the call returns a pending "
    "ticket (status pending_approval, ticket_id, approve_command) instead of acting; tell "
    "the user what to run and watch the ticket with approval_show or its resource."
)


class CommandInput(BaseModel):
    """`command_execute` arguments; unknown keys are refused like every action's."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        max_length=4000,
        description="One `bunsui <resource> <action> ...` line, exactly as printed in a "
        "recovery suggestion or plan step.",
    )


class ToolError(BaseModel):
    """What a failed call (`isError: true`) carries as structured content; part of every
    output schema, since clients may check error results against it too."""

    code: str = Field(description="Stable error code, e.g. NOT_FOUND, INVALID_ARGUMENT.")
    message: str = Field(description="What went wrong, for people.")
    details: dict[str, Any] = Field(default_factory=dict, description="Structured context.")


def visible_actions(gateway: Gateway, actor: str) -> list[Action]:
    """Actions the actor may call (allowed or approval-required); no writes when read-only."""
    return [
        action
        for action in REGISTRY
        if gateway.policy.decide(actor, action.name).outcome is not Outcome.DENY
        and not (gateway.read_only and action.effect is Effect.WRITE)
    ]


def _object_schema(*models: type[BaseModel]) -> dict[str, Any]:
    """One object schema for one model, or an `anyOf` of several, flattened: clients check
    every result against it with a pure-Python validator, where `$ref` lookups and
    `anyOf [X, null]` branches cost more than the call itself for a page of 50 sessions."""
    branches = [_flatten(model.model_json_schema()) for model in models]
    return branches[0] if len(branches) == 1 else {"type": "object", "anyOf": branches}


def _flatten(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The same schema with `$ref`s inlined and nullable `anyOf`s as type lists."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if isinstance(schema, list):
        return [_flatten(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return _flatten({**target, **extra}, defs)
    flat = {k: _flatten(v, defs) for k, v in schema.items() if k != "$defs"}
    options = flat.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        [other] = [o for o in options if o != {"type": "null"}]
        if isinstance(other.get("type"), str):
            del flat["anyOf"]
            flat = {**other, **flat, "type": [other["type"], "null"]}
            if "enum" in other:
                flat["enum"] = [*other["enum"], None]
    return flat


def tool_for(gateway: Gateway, actor: str, action: Action) -> MCPTool:
    """The MCP tool of one action, described for this actor."""
    needs_approval = gateway.policy.decide(actor, action.name).outcome is Outcome.APPROVAL_REQUIRED
    outputs = (action.output_model, PendingApproval) if needs_approval else (action.output_model,)
    return MCPTool(
        name=action.tool_name,
        title=action.title,
        description=action.description + (APPROVAL_NOTE if needs_approval else ""),
        input_schema=_flatten(action.input_model.model_json_schema()),
        output_schema=_object_schema(*outputs, ToolError),
        annotations=ToolAnnotations(
            title=action.title,
            read_only_hint=action.effect is Effect.READ,
            destructive_hint=action.destructive,
            idempotent_hint=action.idempotent,
            open_world_hint=False,
        ),
    )


def command_tool() -> MCPTool:
    """`command_execute`: run a printed `bunsui ...` line through the same gateway."""
    return MCPTool(
        name=COMMAND_TOOL,
        title="Run a bunsui command line",
        description=(
            "Run one `bunsui <resource> <action> ...` command line, such as the `command` of "
            "a recovery suggestion or plan step, exactly as printed. It is parsed without a "
            "shell into an action and arguments and goes through the same policy, approval "
            "and audit as the matching tool: it may return a pending ticket. Returns that "
            "action's result."
        ),
        input_schema=_flatten(CommandInput.model_json_schema()),
        output_schema={
            "type": "object",
            "description": "The command's action result, or a pending_approval ticket.",
        },
        annotations=ToolAnnotations(
            title="Run a bunsui command line",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )


def list_tools(gateway: Gateway, actor: str) -> list[MCPTool]:
    """Every tool this actor sees."""
    return [tool_for(gateway, actor, a) for a in visible_actions(gateway, actor)] + [command_tool()]


def error_result(error: BunsuiError) -> CallToolResult:
    """A tool error carrying `{"code", "message", "details"}`."""
    body = error.to_dict()
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
        structured_content=body,
        is_error=True,
    )


def _result(output: BaseModel) -> CallToolResult:
    data = output.model_dump(mode="json")
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
        structured_content=data,
    )


def _resolve(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The registry action and raw arguments a tool call stands for."""
    if name == COMMAND_TOOL:
        try:
            command = CommandInput.model_validate(arguments).command
        except ValidationError as exc:
            raise InvalidArgumentError(
                "invalid arguments for command_execute", details=validation_details(exc)
            ) from None
        action, parsed = parse_command_line(command, REGISTRY)
        return action.name, parsed
    for action in REGISTRY:
        if action.tool_name == name:
            return action.name, arguments  # unlisted ones too: the gateway refuses and audits
    raise NotFoundError(f"unknown tool {name!r}", details={"tool": name})


async def call_tool(
    gateway: Gateway, actor: str, name: str, arguments: dict[str, Any]
) -> CallToolResult:
    """Run a tool call through the gateway on a worker thread; every failure is a coded
    tool error, never an exception that could take the connection down."""

    def run() -> CallToolResult:
        try:
            action, raw = _resolve(name, arguments)
        except BunsuiError as exc:
            gateway.record_refused(actor, name, arguments, exc)
            return error_result(exc)
        try:
            return _result(gateway.invoke(actor, action, raw))
        except BunsuiError as exc:
            return error_result(exc)

    return await anyio.to_thread.run_sync(run)
