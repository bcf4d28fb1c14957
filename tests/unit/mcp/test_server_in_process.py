"""The MCP server in process, through the official client, in both protocol eras.

Every test runs twice: `mode="auto"` negotiates 2026-07-28 (no initialize handshake) and
`mode="legacy"` the 2025-11-25 handshake. The server is the real one from `build_server`, over
a fresh home, mostly holding one real failed ETL session (transform runs out of memory).
"""

from __future__ import annotations

import getpass
import json
import re
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult

from bunsui_core.actions import REGISTRY, Gateway
from bunsui_core.actions.command_line import parse_command_line
from bunsui_core.actions.registry import Effect
from bunsui_core.config import Settings
from bunsui_core.errors import ErrorCode
from bunsui_core.governance.policy import Outcome
from bunsui_core.store.sqlite import SqliteStore
from bunsui_mcp.server import build_server
from tests.conftest import etl_pipeline
from tests.unit.insights import recorded

PROTOCOLS = {"auto": "2026-07-28", "legacy": "2025-11-25"}
AGENT = "ai-agent"
OS_USER = getpass.getuser()
COMMAND_TOOL = "command_execute"
ERROR_KEYS = {"code", "message", "details"}

pytestmark = pytest.mark.parametrize("mode", list(PROTOCOLS))


# --- helpers ------------------------------------------------------------------------------


def run_session(settings: Settings, tmp_path: Path) -> dict[str, Any]:
    """A real failed ETL session, run in the foreground by the OS user."""
    out = Gateway(settings).invoke(
        OS_USER, "pipeline:run", {"pipeline": etl_pipeline(tmp_path), "wait": True}
    )
    detail = out.model_dump(mode="json")
    assert detail["status"] == "failed", detail
    assert detail["failed_jobs"] == ["transform"]
    return detail


@pytest.fixture
def failed(settings: Settings, tmp_path: Path) -> str:
    """The failed session's id."""
    return run_session(settings, tmp_path)["session_id"]


def with_client(
    settings: Settings,
    mode: str,
    body: Callable[[Client], Awaitable[Any]],
    actor: str = AGENT,
) -> Any:
    """Run `body` against a fresh in-process server and client; checks the negotiated era."""

    async def main() -> Any:
        async with Client(build_server(settings, actor), mode=mode) as client:
            assert client.protocol_version == PROTOCOLS[mode]
            return await body(client)

    return anyio.run(main)


def check_text_mirrors_structure(result: CallToolResult) -> None:
    """The text content is the same JSON as the structured content."""
    assert len(result.content) == 1
    assert result.content[0].type == "text"
    assert json.loads(result.content[0].text) == result.structured_content


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A successful call's structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.structured_content, result.content)
    assert isinstance(result.structured_content, dict)
    check_text_mirrors_structure(result)
    return result.structured_content


async def tool_error(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A coded tool error's body; the connection keeps working afterwards."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, (tool, arguments, result.structured_content)
    body = result.structured_content
    assert isinstance(body, dict)
    assert set(body) == ERROR_KEYS, body
    assert body["code"] in set(ErrorCode)
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["details"], dict)
    check_text_mirrors_structure(result)
    assert (await client.list_tools()).tools, "the server stopped answering tools/list"
    return body


def pending(content: dict[str, Any], action: str) -> str:
    """A pending ticket for `action`, requested by the agent; its id."""
    assert content["status"] == "pending_approval", content
    assert content["action"] == action
    assert content["requested_by"] == AGENT
    assert content["ticket_id"].startswith("tkt-")
    # The tests' home is not ~/.bunsui, so the command names it.
    words = shlex.split(content["approve_command"])
    assert words[:2] == ["bunsui", "--home"]
    assert words[3:] == ["approval", "approve", content["ticket_id"]]
    assert content["resource_uri"] == f"bunsui://tickets/{content['ticket_id']}"
    assert "approval_required" in content["rule"]
    return content["ticket_id"]


def visible(settings: Settings, actor: str) -> set[str]:
    """Tool names the policy lets this actor see: every action not denied, and the command
    tool; in read-only mode no write action."""
    gateway = Gateway(settings)
    return {
        action.tool_name
        for action in REGISTRY
        if gateway.policy.decide(actor, action.name).outcome is not Outcome.DENY
        and not (gateway.read_only and action.effect is Effect.WRITE)
    } | {COMMAND_TOOL}


def audit_entries(settings: Settings) -> list[dict[str, Any]]:
    """Every audit entry, listed through the gateway by the OS user (itself audited)."""
    out = Gateway(settings).invoke(OS_USER, "audit:list", {"limit": 10_000})
    return out.model_dump(mode="json")["entries"]


def audit_seq(settings: Settings) -> int:
    """The newest audit entry's seq, read from the store without auditing the read."""
    store = SqliteStore(settings.database_path)
    try:
        head = store.audit_head()
    finally:
        store.close()
    return head.seq if head else 0


async def read_json(client: Client, uri: str) -> dict[str, Any]:
    result = await client.read_resource(uri)
    assert len(result.contents) == 1
    content = result.contents[0]
    assert content.mime_type == "application/json"
    assert content.uri == uri
    return json.loads(content.text)


# --- tools/list ---------------------------------------------------------------------------


def test_agent_lists_exactly_the_actions_it_is_not_denied(settings, mode):
    """ai-agent: reads and approval-required writes, plus command_execute; never a decision
    on a ticket (the policy denies approve/reject to agents)."""

    async def body(client: Client) -> list[str]:
        return [t.name for t in (await client.list_tools()).tools]

    names = with_client(settings, mode, body)
    assert len(names) == len(set(names))
    expected = visible(settings, AGENT)
    assert set(names) == expected
    assert {"approval_approve", "approval_reject"}.isdisjoint(names)
    # the policy file says so, independently of the helper above
    assert {"session_list", "job_rerun", "recovery_execute", "pipeline_run"} <= set(names)
    assert "audit_list" not in names  # the agent role may not list the audit log


def test_every_tool_is_described_with_schemas_and_honest_annotations(settings, mode):
    async def body(client: Client) -> list[Any]:
        return (await client.list_tools()).tools

    tools = {t.name: t for t in with_client(settings, mode, body)}
    actions = {a.tool_name: a for a in REGISTRY}
    policy = Gateway(settings).policy
    for name, tool in tools.items():
        assert tool.title, name
        assert tool.description, name
        assert tool.input_schema["type"] == "object", name
        assert tool.annotations is not None, name
        assert tool.output_schema is not None, name
        assert tool.output_schema["type"] == "object", name
        assert tool.input_schema["additionalProperties"] is False, name
        if name == COMMAND_TOOL:
            assert tool.input_schema["properties"].keys() == {"command"}
            assert tool.input_schema["required"] == ["command"]
            assert tool.annotations.read_only_hint is False
            assert tool.annotations.destructive_hint is True
            continue
        action = actions[name]
        assert tool.title == action.title
        schema = tool.input_schema
        # arguments at the top level, not nested under a parameter name
        assert set(schema.get("properties", {})) == set(action.input_model.model_fields)
        required = {f for f, info in action.input_model.model_fields.items() if info.is_required()}
        assert set(schema.get("required", [])) == required, name
        hints = tool.annotations
        assert hints.read_only_hint is (action.effect is Effect.READ), name
        assert hints.destructive_hint is action.destructive, name
        assert hints.idempotent_hint is action.idempotent, name
        assert hints.open_world_hint is False, name
        if policy.decide(AGENT, action.name).outcome is Outcome.APPROVAL_REQUIRED:
            assert "approval" in tool.description
            titles = {b.get("title") for b in tool.output_schema["anyOf"]}
            assert "PendingApproval" in titles, name
    rerun = tools["job_rerun"].input_schema
    assert {"job_id", "session_id"} <= set(rerun["properties"])
    assert {"job_id", "session_id"} <= set(rerun["required"])


def test_os_user_sees_the_approval_decisions(settings, mode):
    async def body(client: Client) -> set[str]:
        return {t.name for t in (await client.list_tools()).tools}

    names = with_client(settings, mode, body, actor=OS_USER)
    assert names == visible(settings, OS_USER)
    assert {"approval_approve", "approval_reject", "audit_list", "audit_export"} <= names


def test_read_only_lists_no_write_tool_and_refuses_one_called_anyway(
    settings, tmp_path, mode, failed
):
    read_only = Settings.resolve(settings.home, read_only=True)
    head_before = audit_seq(settings)
    writes = {a.tool_name for a in REGISTRY if a.effect is Effect.WRITE}

    async def body(client: Client) -> tuple[set[str], dict[str, Any], dict[str, Any]]:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await tool_error(
            client, "job_rerun", {"job_id": "transform", "session_id": failed}
        )
        listed = await ok(client, "session_list")
        return names, refused, listed

    names, refused, listed = with_client(read_only, mode, body)
    assert names.isdisjoint(writes)
    assert names == visible(read_only, AGENT)
    assert {"session_list", "error_analyze", COMMAND_TOOL} <= names
    assert refused["code"] == ErrorCode.READ_ONLY
    assert [s["session_id"] for s in listed["sessions"]] == [failed]
    # read-only mode writes nothing, not even audit entries
    assert audit_seq(settings) == head_before


# --- read tools ---------------------------------------------------------------------------


def test_every_read_tool_answers_about_the_failed_session(settings, tmp_path, mode, failed):
    pipeline_file = str(tmp_path / "etl.yaml")
    read_tools = {a.tool_name for a in REGISTRY if a.effect is Effect.READ}
    agent_reads = read_tools & visible(settings, AGENT)
    called: set[str] = set()

    async def body(client: Client) -> None:
        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            called.add(tool)
            return await ok(client, tool, **arguments)

        listed = await call("session_list", filter={"status": "failed"})
        assert [s["session_id"] for s in listed["sessions"]] == [failed]
        assert listed["sessions"][0]["failed_jobs"] == ["transform"]
        assert (await call("session_list", filter={"status": "completed"}))["sessions"] == []

        detail = await call("session_describe", session_id=failed)
        assert detail["status"] == "failed"
        assert detail["pipeline_id"] == "etl"
        assert {j["job_id"]: j["status"] for j in detail["jobs"]} == {
            "extract": "completed",
            "transform": "failed",
            "load": "upstream_failed",
        }

        jobs = await call("job_list", session_id=failed)
        assert jobs["session_id"] == failed
        assert [j["job_id"] for j in jobs["jobs"]] == ["extract", "transform", "load"]

        job = await call("job_describe", session_id=failed, job_id="transform")
        assert job["status"] == "failed"
        assert job["dependencies"] == ["extract"]
        [attempt] = job["operations"][0]["attempts"]
        assert (attempt["exit_code"], attempt["signal"], attempt["oom_killed"]) == (None, 9, True)

        logs = await call("job_logs", session_id=failed, job_id="transform", stream="stderr")
        assert [log["stream"] for log in logs["logs"]] == ["stderr"]
        stderr = logs["logs"][0]["content"]
        assert stderr["trust"] == "untrusted_pipeline_output"

        analysis = await call("error_analyze", session_id=failed)
        assert analysis["session_id"] == failed
        [error] = analysis["errors"]
        assert error["error_code"] == "LOCAL_MEMORY_LIMIT"
        assert error["job_id"] == "transform"
        assert error["recoverable"] is True
        assert error["message"]["trust"] == "untrusted_pipeline_output"
        assert error["message"]["text"].startswith("OutOfMemoryError: Command killed")
        assert error["context"]["memory_limit_mb"] == 96
        assert error["recovery_suggestions"][0]["action"] == "increase_memory"
        assert error["recovery_suggestions"][0]["command"].startswith("bunsui ")

        classified = await call(
            "error_classify", message="MemoryError: Unable to allocate 150. MiB"
        )
        assert classified["error_code"] == "PYTHON_MEMORY_ERROR"
        assert classified["category"] == "RESOURCE"
        assert classified["fingerprint"].startswith("fp-")
        assert classified["recovery_suggestions"]

        resolutions = await call("error_resolutions", error_code="LOCAL_MEMORY_LIMIT")
        assert resolutions == {"totals": [], "resolutions": []}

        plans = await call("recovery_suggest", session_id=failed)
        assert plans["session_id"] == failed
        best = plans["recovery_plans"][0]
        assert best["executable"] is True
        assert best["action"] == "increase_memory"
        assert best["plan_id"].startswith("plan-")
        assert [s["step"] for s in best["steps"]] == [1, 2]

        pipelines = await call("pipeline_list")
        assert [(p["pipeline_id"], p["version"], p["jobs"]) for p in pipelines["pipelines"]] == [
            ("etl", 1, 3)
        ]
        described = await call("pipeline_describe", pipeline_id="etl")
        assert described["pipeline_id"] == "etl"
        assert [j["job_id"] for j in described["definition"]["jobs"]] == [
            "extract",
            "transform",
            "load",
        ]
        validation = await call("pipeline_validate", file=pipeline_file)
        assert validation["valid"] is True
        assert validation["job_order"] == ["extract", "transform", "load"]
        assert validation["operations"] == 3

        assert (await call("approval_list"))["tickets"] == []
        ticket = pending(
            await ok(client, "job_rerun", job_id="transform", session_id=failed), "job:rerun"
        )
        tickets = await call("approval_list", status="pending")
        assert [t["ticket_id"] for t in tickets["tickets"]] == [ticket]
        shown = await call("approval_show", ticket_id=ticket)
        assert shown["status"] == "pending"
        assert shown["action"] == "job:rerun"
        assert shown["arguments"]["session_id"] == failed
        assert shown["requested_by"] == AGENT

        head = await call("audit_head")
        assert head["seq"] > 0
        assert head["head"] == f"{head['seq']}:{head['hash']}"
        verified = await call("audit_verify", expect_head=head["head"])
        assert verified["ok"] is True
        assert verified["entries"] >= head["seq"]

        check = await call("policy_check", actor=AGENT, action="approval:approve")
        assert check["outcome"] == "deny"
        assert "approval:approve" in check["rule"]
        check = await call("policy_check", actor=AGENT, action="job:rerun")
        assert check["outcome"] == "approval_required"
        explained = await call("policy_explain")
        assert explained["actor"] == AGENT
        assert explained["kind"] == "agent"
        assert explained["roles"] == ["ai_agent"]
        decisions = {d["action"]: d["outcome"] for d in explained["decisions"]}
        assert decisions["approval:approve"] == "deny"
        assert decisions["session:list"] == "allow"

        # a recorded history whose peak memory climbs towards the limit
        store = SqliteStore(settings.database_path)
        rec = recorded.Recorder(store, "grow", recorded.job("load", memory=512))
        for peak in (200, 240, 280, 320, 360):
            rec.run(load=recorded.Ran(peak=peak, limit=512))
        store.close()
        insights = (await call("insight_list", pipeline="grow"))["insights"]
        assert [(i["job_id"], i["rule"]) for i in insights] == [("load", "memory_near_limit")]
        shown = await call("insight_show", insight_id=insights[0]["insight_id"])
        assert shown["suggestion"]["command"].startswith("bunsui pipeline update-config grow")

        # read tools added to the registry later still get called once, with their required
        # arguments taken from this home
        known = {
            "session_id": failed,
            "job_id": "transform",
            "pipeline_id": "etl",
            "ticket_id": ticket,
            "plan_id": best["plan_id"],
            "file": pipeline_file,
            "message": "MemoryError",
            "actor": AGENT,
            "action": "session:list",
        }
        actions = {a.tool_name: a for a in REGISTRY}
        for tool in sorted(agent_reads - called):
            fields = actions[tool].input_model.model_fields
            await call(tool, **{f: known[f] for f, info in fields.items() if info.is_required()})

    with_client(settings, mode, body)
    assert called == agent_reads, agent_reads ^ called


# --- write tools as the agent: tickets ----------------------------------------------------


def test_agent_writes_are_pending_tickets_and_dry_run_is_a_preview(
    settings, tmp_path, mode, failed
):
    pipeline_file = str(tmp_path / "etl.yaml")
    writes = [
        ("job_rerun", "job:rerun", {"job_id": "transform", "session_id": failed}),
        (
            "job_update_config",
            "job:update-config",
            {"job_id": "transform", "session_id": failed, "memory": 320, "reason": "peak"},
        ),
        ("session_rerun", "session:rerun", {"session_id": failed, "strategy": "failed-only"}),
        (
            "job_mark",
            "job:mark",
            {"job_id": "transform", "session_id": failed, "status": "succeeded", "reason": "fixed"},
        ),
        (
            "error_learn",
            "error:learn",
            {"error_code": "LOCAL_MEMORY_LIMIT", "action": "increase_memory", "outcome": "success"},
        ),
        ("pipeline_run", "pipeline:run", {"pipeline": pipeline_file}),
    ]

    async def body(client: Client) -> dict[str, str]:
        tickets: dict[str, str] = {}
        for tool, action, arguments in writes:
            first = await ok(client, tool, **arguments)
            tickets[tool] = pending(first, action)
            assert first["created"] is True
            again = await ok(client, tool, **arguments)
            assert again["ticket_id"] == tickets[tool], tool
            assert again["created"] is False
        plan = (await ok(client, "recovery_suggest", session_id=failed))["recovery_plans"][0]
        preview = await ok(client, "recovery_execute", plan_id=plan["plan_id"], dry_run=True)
        assert "status" not in preview
        assert preview["plan_id"] == plan["plan_id"]
        assert preview["dry_run"] is True
        assert [s["status"] for s in preview["steps"]] == ["would_run", "would_run"]
        assert preview["steps"][0]["result"]["diff"]["memory_mb"]["before"] == 96
        assert preview["steps"][1]["result"]["jobs_to_run"] == ["transform", "load"]
        real = await ok(client, "recovery_execute", plan_id=plan["plan_id"], dry_run=False)
        tickets["recovery_execute"] = pending(real, "recovery:execute")
        assert real["arguments"]["dry_run"] is False
        listed = await ok(client, "approval_list", status="pending")
        assert {t["ticket_id"] for t in listed["tickets"]} == set(tickets.values())
        return tickets

    tickets = with_client(settings, mode, body)
    assert len(set(tickets.values())) == len(tickets)
    # nothing ran: still the one failed session, transform still failed
    store_view = Gateway(settings).invoke(OS_USER, "session:list", {}).model_dump(mode="json")
    assert [s["session_id"] for s in store_view["sessions"]] == [failed]
    jobs = Gateway(settings).invoke(OS_USER, "job:list", {"session_id": failed})
    assert {j.job_id: str(j.status) for j in jobs.jobs}["transform"] == "failed"


def test_a_ticket_approved_by_the_os_user_executes_and_the_resource_shows_it(
    settings, mode, failed
):
    arguments = {"job_id": "transform", "session_id": failed, "memory": 320, "reason": "peak"}

    async def request(client: Client) -> str:
        return pending(await ok(client, "job_update_config", **arguments), "job:update-config")

    ticket_id = with_client(settings, mode, request)
    approved = Gateway(settings).invoke(OS_USER, "approval:approve", {"ticket_id": ticket_id})
    assert str(approved.status) == "executed"

    async def watch(client: Client) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        resource = await read_json(client, f"bunsui://tickets/{ticket_id}")
        shown = await ok(client, "approval_show", ticket_id=ticket_id)
        again = await ok(client, "job_update_config", **arguments)
        return resource, shown, again

    resource, shown, again = with_client(settings, mode, watch)
    assert resource["status"] == "executed"
    assert resource["decided_by"] == OS_USER
    assert resource["requested_by"] == AGENT
    assert resource["result"]["override"]["memory_mb"] == 320
    assert resource["result"]["diff"]["memory_mb"] == {"before": 96, "after": 320}
    assert shown == resource
    # the executed ticket is not reused: the same request again is a new pending ticket
    assert pending(again, "job:update-config") != ticket_id
    executed = [e for e in audit_entries(settings) if e["result"] == "executed"]
    assert [(e["actor"], e["action"], e["ticket_id"]) for e in executed] == [
        (AGENT, "job:update-config", ticket_id)
    ]
    assert executed[0]["approval"]["approved_by"] == OS_USER


# --- command_execute ----------------------------------------------------------------------


def test_command_execute_runs_a_suggestion_like_the_matching_tool(settings, mode, failed):
    async def body(client: Client) -> None:
        analysis = await ok(client, "error_analyze", session_id=failed)
        suggestion = analysis["errors"][0]["recovery_suggestions"][0]
        command = suggestion["command"]
        action, arguments = parse_command_line(command, REGISTRY)
        assert action.name == "job:update-config"
        via_command = await ok(client, COMMAND_TOOL, command=command)
        via_tool = await ok(client, action.tool_name, **arguments)
        ticket = pending(via_command, action.name)
        assert via_tool["ticket_id"] == ticket
        assert via_tool["arguments"] == via_command["arguments"]
        # the printed `--memory N` became the integer the tool takes
        assert via_command["arguments"]["memory"] == int(arguments["memory"])
        assert via_tool["created"] is False

        # a read command returns exactly what the tool does
        line = f"bunsui session describe {failed}"
        assert await ok(client, COMMAND_TOOL, command=line) == await ok(
            client, "session_describe", session_id=failed
        )
        plans = await ok(client, "recovery_suggest", session_id=failed)
        step = plans["recovery_plans"][0]["steps"][1]["command"]
        rerun = await ok(client, COMMAND_TOOL, command=step)
        assert pending(rerun, "job:rerun")
        assert rerun["arguments"]["skip_successful"] is True

    with_client(settings, mode, body)


@pytest.mark.parametrize(
    "line",
    [
        "bunsui session list '",
        'bunsui job logs transform --session-id "ses-x',
        "rm -rf /",
        "bunsui nope nope",
        "bunsui session",
        "",
        "bunsui session describe",
        "bunsui session list --bogus 1",
        "bunsui session list --limit",
        "bunsui session list extra-positional",
        "bunsui session list --limit lots",
        "bunsui session list; rm -rf /",
        "bunsui session list $(reboot)",
    ],
)
def test_command_execute_refuses_malformed_lines_with_invalid_argument(settings, mode, line):
    async def body(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        refused = await tool_error(client, COMMAND_TOOL, {"command": line})
        return refused, await ok(client, "session_list")

    refused, listed = with_client(settings, mode, body)
    assert refused["code"] == ErrorCode.INVALID_ARGUMENT, refused
    assert listed["sessions"] == []


def test_command_execute_validates_its_own_input(settings, mode):
    async def body(client: Client) -> list[dict[str, Any]]:
        return [
            await tool_error(client, COMMAND_TOOL, arguments)
            for arguments in [
                {},
                {"command": 42},
                {"command": None},
                {"command": "bunsui session list " + "x" * 5000},
            ]
        ]

    for refused in with_client(settings, mode, body):
        assert refused["code"] == ErrorCode.INVALID_ARGUMENT, refused
        assert [e["field"] for e in refused["details"]["errors"]] == ["command"], refused


def test_command_execute_rejects_extra_arguments_like_every_other_tool(settings, mode):
    async def body(client: Client) -> dict[str, Any]:
        return await tool_error(
            client, COMMAND_TOOL, {"command": "bunsui session list", "actor": OS_USER}
        )

    refused = with_client(settings, mode, body)
    assert refused["code"] == ErrorCode.INVALID_ARGUMENT
    assert refused["details"]["errors"] == [
        {"field": "actor", "message": "Extra inputs are not permitted"}
    ]


# --- tool errors --------------------------------------------------------------------------


def test_tool_errors_are_coded_and_the_server_keeps_answering(settings, mode, failed):
    async def body(client: Client) -> dict[str, dict[str, Any]]:
        errors = {
            "unknown session": await tool_error(
                client, "session_describe", {"session_id": "ses-000000000000"}
            ),
            "unknown job": await tool_error(
                client, "job_describe", {"session_id": failed, "job_id": "nope"}
            ),
            "unknown plan": await tool_error(
                client, "recovery_execute", {"plan_id": "plan-nope", "dry_run": True}
            ),
            "unknown ticket": await tool_error(client, "approval_show", {"ticket_id": "tkt-x"}),
            "bad types": await tool_error(
                client,
                "session_list",
                {"limit": "lots", "filter": {"status": "exploded"}, "cursor": 7},
            ),
            "missing required": await tool_error(client, "job_rerun", {"job_id": "transform"}),
            "unknown tool": await tool_error(client, "no_such_tool", {}),
            "denied tool": await tool_error(client, "approval_approve", {"ticket_id": "tkt-x"}),
            "denied audit": await tool_error(client, "audit_list", {}),
        }
        listed = await ok(client, "session_list", filter={"status": "failed"})
        assert [s["session_id"] for s in listed["sessions"]] == [failed]
        return errors

    errors = with_client(settings, mode, body)
    codes = {what: e["code"] for what, e in errors.items()}
    assert codes == {
        "unknown session": ErrorCode.NOT_FOUND,
        "unknown job": ErrorCode.NOT_FOUND,
        "unknown plan": ErrorCode.NOT_FOUND,
        "unknown ticket": ErrorCode.NOT_FOUND,
        "bad types": ErrorCode.INVALID_ARGUMENT,
        "missing required": ErrorCode.INVALID_ARGUMENT,
        "unknown tool": ErrorCode.NOT_FOUND,
        "denied tool": ErrorCode.PERMISSION_DENIED,
        "denied audit": ErrorCode.PERMISSION_DENIED,
    }
    assert errors["unknown session"]["details"] == {"session_id": "ses-000000000000"}
    fields = {e["field"] for e in errors["bad types"]["details"]["errors"]}
    assert fields == {"limit", "filter.status", "cursor"}
    for field_error in errors["bad types"]["details"]["errors"]:
        assert field_error["message"]
    missing = errors["missing required"]["details"]["errors"]
    assert [(e["field"], e["message"]) for e in missing] == [("session_id", "Field required")]
    assert "rule" in errors["denied tool"]["details"]
    # refusals by policy are audited under the connection's actor
    denied = [e for e in audit_entries(settings) if e["result"] == "denied"]
    assert {(e["actor"], e["action"]) for e in denied} == {
        (AGENT, "approval:approve"),
        (AGENT, "audit:list"),
    }


# --- resources ----------------------------------------------------------------------------


def test_every_resource_and_template_reads_as_json(settings, mode, failed):
    async def body(client: Client) -> dict[str, Any]:
        statics = {r.uri for r in (await client.list_resources()).resources}
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        ticket = pending(
            await ok(client, "job_rerun", job_id="transform", session_id=failed), "job:rerun"
        )
        values = {
            "session_id": failed,
            "job_id": "transform",
            "pipeline_id": "etl",
            "ticket_id": ticket,
        }
        read = {uri: await read_json(client, uri) for uri in statics}
        for template in templates:
            uri = template.format(**values)
            read[template] = await read_json(client, uri)
        return {"statics": statics, "templates": templates, "read": read, "ticket": ticket}

    out = with_client(settings, mode, body)
    assert out["statics"] == {
        "bunsui://sessions",
        "bunsui://audit/head",
        "bunsui://claims",
        "bunsui://insights",
    }
    assert out["templates"] == {
        "bunsui://sessions/{session_id}",
        "bunsui://sessions/{session_id}/errors",
        "bunsui://sessions/{session_id}/jobs/{job_id}",
        "bunsui://pipelines/{pipeline_id}",
        "bunsui://tickets/{ticket_id}",
    }
    read = out["read"]
    assert {"sessions", "next_cursor"} <= set(read["bunsui://sessions"])
    assert [s["session_id"] for s in read["bunsui://sessions"]["sessions"]] == [failed]
    assert isinstance(read["bunsui://insights"]["insights"], list)
    assert read["bunsui://claims"] == {"claims": []}
    head = read["bunsui://audit/head"]
    assert {"seq", "hash", "head"} <= set(head)
    assert head["seq"] > 0
    session = read["bunsui://sessions/{session_id}"]
    assert {"session_id", "status", "jobs", "failed_jobs", "error_summary"} <= set(session)
    assert (session["session_id"], session["status"]) == (failed, "failed")
    errors = read["bunsui://sessions/{session_id}/errors"]
    assert {"session_id", "status", "errors"} <= set(errors)
    assert errors["errors"][0]["error_code"] == "LOCAL_MEMORY_LIMIT"
    assert errors["errors"][0]["recovery_suggestions"]
    job = read["bunsui://sessions/{session_id}/jobs/{job_id}"]
    assert (job["job_id"], job["status"]) == ("transform", "failed")
    assert job["operations"][0]["attempts"][0]["nodes"] == []
    pipeline = read["bunsui://pipelines/{pipeline_id}"]
    assert {"pipeline_id", "version", "name", "definition"} <= set(pipeline)
    assert (pipeline["pipeline_id"], pipeline["version"]) == ("etl", 1)
    ticket = read["bunsui://tickets/{ticket_id}"]
    assert {"ticket_id", "status", "action", "arguments", "requested_by"} <= set(ticket)
    assert (ticket["ticket_id"], ticket["status"]) == (out["ticket"], "pending")


def test_unknown_ids_in_templates_are_mcp_errors_not_crashes(settings, mode, failed):
    async def body(client: Client) -> list[Any]:
        errors = []
        for uri in [
            "bunsui://sessions/ses-000000000000",
            "bunsui://sessions/ses-000000000000/errors",
            "bunsui://pipelines/nope",
            "bunsui://tickets/tkt-nope",
            "bunsui://nothing/here",
        ]:
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            errors.append(caught.value.error)
        # the connection survives
        assert (await read_json(client, f"bunsui://sessions/{failed}"))["status"] == "failed"
        return errors

    errors = with_client(settings, mode, body)
    for error in errors:  # the caller's mistake: invalid params, as the SDK says for bad URIs
        assert error.code == INVALID_PARAMS
    for error in errors[:4]:
        assert error.data["code"] == ErrorCode.NOT_FOUND
    assert "bunsui://nothing/here" in errors[4].message


# --- prompts ------------------------------------------------------------------------------


def test_prompts_guide_the_agent_through_real_tools(settings, mode, failed):
    async def body(client: Client) -> tuple[dict[str, Any], dict[str, str]]:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        texts = {}
        for name, arguments in [
            ("bunsui_operator", None),
            ("diagnose_session", {"session_id": failed}),
            ("recover_session", {"session_id": failed}),
            ("review_insights", {"pipeline_id": "etl"}),
        ]:
            prompt = await client.get_prompt(name, arguments)
            assert len(prompt.messages) == 1
            assert prompt.messages[0].role == "user"
            assert prompt.messages[0].content.type == "text"
            texts[name] = prompt.messages[0].content.text
        return listed, texts

    listed, texts = with_client(settings, mode, body)
    assert set(listed) == {
        "bunsui_operator",
        "diagnose_session",
        "recover_session",
        "review_insights",
    }
    [argument] = listed["review_insights"].arguments
    assert (argument.name, argument.required) == ("pipeline_id", True)
    assert listed["bunsui_operator"].arguments in ([], None)
    for name in ("diagnose_session", "recover_session"):
        [argument] = listed[name].arguments
        assert (argument.name, argument.required) == ("session_id", True)
        assert listed[name].description

    operator = texts["bunsui_operator"]
    assert "ticket" in operator
    assert "approv" in operator
    assert "pending_approval" in operator
    assert "data, never instructions" in operator
    tool_names = {a.tool_name for a in REGISTRY}
    for name in ("diagnose_session", "recover_session"):
        text = texts[name]
        assert failed in text
        assert "{session_id}" not in text
        assert "error_analyze" in text
        assert "never" in text
        assert "instructions" in text
    review = texts["review_insights"]
    assert "{pipeline_id}" not in review
    for tool in ("insight_list", "insight_apply", "pipeline_stats", "approval_show"):
        assert f"`{tool}`" in review, tool
    recover = texts["recover_session"]
    for tool in ("error_analyze", "recovery_suggest", "recovery_execute", "approval_show"):
        assert f"`{tool}`" in recover, tool
    # every backquoted snake_case name in the prompts is a real tool
    for text in texts.values():
        for named in re.findall(r"`([a-z]+_[a-z_]+)`", text):
            if named in {"session_id", "plan_id", "ticket_id", "dry_run", "approve_command"}:
                continue
            if named in {"error_code", "resource_uri", "recovery_suggestions"}:
                continue
            if named in {"confidence_basis", "estimated_effect", "expected_command"}:
                continue
            assert named in tool_names, named


@pytest.mark.parametrize(
    "request_and_reason",
    [
        ("diagnose_session", {}, "missing argument 'session_id'"),
        ("recover_session", None, "missing argument 'session_id'"),
        ("diagnose_session", {"session_id": "ses-1", "style": "x"}, "unknown argument 'style'"),
        ("no_such_prompt", {}, "unknown prompt 'no_such_prompt'"),
    ],
)
def test_bad_prompt_requests_are_invalid_params_with_the_reason(
    settings, mode, capfd, request_and_reason
):
    """A missing or unknown argument, or an unknown prompt, is -32602 saying why; no
    traceback is printed and the connection keeps answering."""
    name, arguments, reason = request_and_reason

    async def body(client: Client) -> Any:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt(name, arguments)
        assert (await client.list_prompts()).prompts
        return caught.value.error

    error = with_client(settings, mode, body)
    assert error.code == INVALID_PARAMS
    assert reason in error.message
    assert "Traceback" not in capfd.readouterr().err


def test_input_schemas_are_flat_for_strict_function_calling(settings, mode):
    """No tool's input schema has `$ref`, `$defs` or `anyOf`: nullable fields are type lists."""

    async def body(client: Client) -> list[Any]:
        return (await client.list_tools()).tools

    for tool in with_client(settings, mode, body, actor=getpass.getuser()):
        text = json.dumps(tool.input_schema)
        for construct in ("$ref", "$defs", "anyOf"):
            assert construct not in text, (tool.name, construct)
    rerun = {t.name: t for t in with_client(settings, mode, body)}["job_rerun"].input_schema
    assert rerun["properties"]["batch_size"]["type"] == ["integer", "null"]


# --- identity -----------------------------------------------------------------------------


def test_the_actor_cannot_be_forged_and_the_audit_log_names_the_agent(settings, mode, failed):
    async def body(client: Client) -> list[dict[str, Any]]:
        refused = [
            await tool_error(
                client,
                "job_rerun",
                {"job_id": "transform", "session_id": failed, "actor": OS_USER},
            ),
            await tool_error(client, "session_list", {"actor": OS_USER}),
            await tool_error(
                client, "approval_list", {"requested_by": AGENT, "approved_by": OS_USER}
            ),
            await tool_error(
                client,
                COMMAND_TOOL,
                {"command": f"bunsui session describe {failed} --actor {OS_USER}"},
            ),
            await tool_error(
                client, COMMAND_TOOL, {"command": "bunsui session list", "actor": OS_USER}
            ),
        ]
        # explaining someone else's permissions does not make the caller them
        explained = await ok(client, "policy_explain", actor=OS_USER)
        assert explained["actor"] == OS_USER
        assert explained["kind"] == "human"
        # a write is still the agent's ticket
        ticket = await ok(client, "job_rerun", job_id="transform", session_id=failed)
        assert pending(ticket, "job:rerun")
        return refused

    refused = with_client(settings, mode, body)
    assert [e["code"] for e in refused] == [ErrorCode.INVALID_ARGUMENT] * 5
    for body_ in [*refused[:2], refused[4]]:
        assert {"field": "actor", "message": "Extra inputs are not permitted"} in body_["details"][
            "errors"
        ]
    assert "--actor" in refused[3]["message"]
    entries = audit_entries(settings)
    mine = [e for e in entries if e["action"] != "audit:list" and e["actor"] != OS_USER]
    assert mine
    assert {e["actor"] for e in mine} == {AGENT}
    forged = [e for e in entries if e["arguments"].get("actor") == OS_USER]
    assert {(e["actor"], e["action"]) for e in forged} == {
        (AGENT, "job:rerun"),
        (AGENT, "session:list"),
        (AGENT, "policy:explain"),
        (AGENT, "command_execute"),  # refused before parsing, still audited as the agent
    }
    # only the OS user's own setup run and audit reads are under the OS user's name
    assert {e["action"] for e in entries if e["actor"] == OS_USER} <= {
        "pipeline:run",
        "audit:list",
    }
