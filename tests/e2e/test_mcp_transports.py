"""The real `bunsui-mcp` over stdio and HTTP, driven by the official MCP client."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import etl_pipeline
from tests.e2e.test_cli import Cli

BUNSUI_MCP = str(Path(sys.executable).parent / "bunsui-mcp")
PROTOCOLS = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def failed_session(cli: Cli, tmp_path: Path) -> str:
    """A real failed ETL session (transform runs out of memory), run by the OS user."""
    return cli.json("pipeline", "run", etl_pipeline(tmp_path), "--wait", expect=10)["session_id"]


def server_env(cli: Cli) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")}
    return {**env, "BUNSUI_HOME": str(cli.home)}


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.structured_content
    return result.structured_content


@pytest.mark.parametrize("mode", list(PROTOCOLS))
def test_agent_over_stdio_gets_a_ticket_a_human_approves_and_the_rerun_completes(
    cli, tmp_path, mode
):
    """The agent's view end to end: find the failure, analyze it, request the rerun (a
    ticket), a human approves on the CLI, the agent sees the ticket executed and the rerun
    session complete."""
    session_id = failed_session(cli, tmp_path)
    params = StdioServerParameters(command=BUNSUI_MCP, args=[], env=server_env(cli))

    async def agent() -> tuple[str, str]:
        async with Client(params, mode=mode) as client:
            assert client.protocol_version == PROTOCOLS[mode]
            failed = await call(client, "session_list", filter={"status": "failed"})
            assert [s["session_id"] for s in failed["sessions"]] == [session_id]
            analysis = await call(client, "error_analyze", session_id=session_id)
            assert analysis["errors"][0]["error_code"] == "LOCAL_MEMORY_LIMIT"
            ticket = await call(
                client,
                "job_rerun",
                job_id="transform",
                session_id=session_id,
                skip_successful=True,
                batch_size=40,
            )
            assert ticket["status"] == "pending_approval"
            assert ticket["requested_by"] == "ai-agent"
            approve = ticket["approve_command"].split()
            assert approve[0] == "bunsui"
            assert approve[-3:-1] == ["approval", "approve"]
            human = await anyio.to_thread.run_sync(lambda: cli.json(*approve[1:]))
            assert human["decided_by"] == getpass.getuser()
            read = await client.read_resource(ticket["resource_uri"])
            executed = json.loads(read.contents[0].text)
            assert executed["status"] == "executed"
            rerun_id = executed["result"]["session_id"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rerun = await call(client, "session_describe", session_id=rerun_id)
                if rerun["status"] in {"completed", "failed"}:
                    break
                await anyio.sleep(0.2)
            return rerun_id, rerun["status"]

    rerun_id, status = anyio.run(agent)
    assert status == "completed"
    jobs = {
        j["job_id"]: j["status"] for j in cli.json("job", "list", "--session-id", rerun_id)["jobs"]
    }
    assert jobs == {"extract": "skipped", "transform": "completed", "load": "completed"}
    entries = cli.json("audit", "list", "--actor", "ai-agent", "--limit", "1000")["entries"]
    assert {"pending_approval", "executed"} <= {e["result"] for e in entries}
    cli.json("audit", "verify")


def test_stdio_stream_survives_hostile_arguments(cli):
    """Malformed calls come back as coded tool errors; stdout carries only protocol."""
    params = StdioServerParameters(command=BUNSUI_MCP, args=[], env=server_env(cli))

    async def agent() -> list[dict[str, Any]]:
        errors = []
        async with Client(params, mode="legacy") as client:
            for tool, arguments in [
                ("session_describe", {"session_id": "ses-nope"}),
                ("session_list", {"limit": "lots", "extra": 1}),
                ("command_execute", {"command": "bunsui session list '"}),
                ("error_classify", {"message": "\x00\x1b[2J" * 10_000}),
            ]:
                result = await client.call_tool(tool, arguments)
                if result.is_error:
                    errors.append(result.structured_content)
            assert (await client.list_tools()).tools
        return errors

    errors = anyio.run(agent)
    assert [e["code"] for e in errors] == ["NOT_FOUND", "INVALID_ARGUMENT", "INVALID_ARGUMENT"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(cli, tmp_path):
    """`bunsui-mcp --transport http` on loopback with a tokens file holding alice's token."""
    tokens = tmp_path / "tokens.yaml"
    made = subprocess.run(
        [BUNSUI_MCP, "--tokens", str(tokens), "--new-token", "alice"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip()
    assert token not in tokens.read_text()
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "viewer:\n  kind: human\n  allowed_actions: [session:describe, session:list]\n"
        "operator:\n  kind: human\n  allowed_actions: ['*']\n"
        "actors:\n  alice: viewer\n  $OS_USER: operator\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            BUNSUI_MCP,
            "--transport",
            "http",
            "--port",
            str(port),
            "--tokens",
            str(tokens),
            "--policy",
            str(policy),
        ],
        env=server_env(cli),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.1)
    yield url, token
    process.terminate()
    _, stderr = process.communicate(timeout=10)
    assert token not in stderr


def test_http_needs_a_valid_token_and_records_its_actor(cli, tmp_path, http_server):
    """No token or a wrong one is 401; a valid token acts as its actor, in the audit log."""
    url, token = http_server
    hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx2.post(url, json=hello, headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer not-the-token"}
    assert httpx2.post(url, json=hello, headers=wrong).status_code == 401
    session_id = failed_session(cli, tmp_path)

    async def agent() -> tuple[dict[str, Any], list[str], dict[str, Any]]:
        auth = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=auth) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            tools = [t.name for t in (await client.list_tools()).tools]
            described = await call(client, "session_describe", session_id=session_id)
            refused = await client.call_tool("session_cancel", {"session_id": session_id})
            return described, tools, refused.structured_content

    described, tools, refused = anyio.run(agent)
    assert described["session_id"] == session_id
    assert sorted(tools) == ["command_execute", "session_describe", "session_list"]
    assert refused["code"] == "PERMISSION_DENIED"
    entries = cli.json("audit", "list", "--actor", "alice")["entries"]
    assert [(e["action"], e["result"]) for e in entries] == [
        ("session:describe", "allowed"),
        ("session:cancel", "denied"),
    ]
