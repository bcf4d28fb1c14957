"""The real `bunsui-mcp` checked by the official MCP tools: the Inspector CLI over stdio (with
its tool-schema portability lint) and the conformance suite's server scenarios over
streamable HTTP. The tools come from npm (see npm_tools.py); no npm on PATH skips this module,
any other install failure fails it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import etl_pipeline
from tests.e2e.npm_tools import NpmTools, ensure_tools
from tests.e2e.test_cli import Cli

pytestmark = pytest.mark.slow

BUNSUI_MCP = str(Path(sys.executable).parent / "bunsui-mcp")
NODE_TIMEOUT = 120

# Generic scenarios a production server can pass (the others need the SDK's "everything
# server" fixtures: test_* tools, test:// resources, test_* prompts).
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "resources-subscribe",
    "resources-unsubscribe",
]
# Scenarios run only when the server advertises the capability they exercise.
OPTIONAL_SCENARIOS = {"logging-set-level": "logging", "completion-complete": "completions"}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without bunsui's own settings (the tests pass --home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")}
    return {**env, **extra}


@pytest.fixture(scope="session")
def npm_tools() -> NpmTools:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH: the official MCP tools are Node packages from npm")
    try:
        return ensure_tools(npm)
    except Exception as exc:  # no network, registry error, broken package: a failure, not a skip
        pytest.fail(f"could not install the official MCP tools: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def failed_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A bunsui home holding one failed ETL session (transform runs out of memory)."""
    root = tmp_path_factory.mktemp("official-mcp")
    cli = Cli(root / "home")
    session = cli.json("pipeline", "run", etl_pipeline(root), "--wait", expect=10)
    assert session["status"] == "failed"
    return cli.home, session["session_id"]


@pytest.fixture(scope="session")
def node_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME for the node processes, so the Inspector's ~/.mcp-inspector stays out of ours."""
    return tmp_path_factory.mktemp("node-home")


def run_node(
    tools: NpmTools, node_home: Path, script: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.node), str(script), *args],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        env=clean_env(HOME=str(node_home), NO_COLOR="1"),
        cwd=cwd or node_home,
        check=False,
    )


def inspector_calls(session_id: str) -> dict[str, list[str]]:
    """Every Inspector invocation the tests check, by name: arguments after the server."""
    tool_call = ["--method", "tools/call", "--tool-name"]
    read = ["--method", "resources/read", "--uri"]
    return {
        "lint legacy": ["--protocol-era", "legacy", "--method", "tools/list", "--strict"],
        "lint modern": ["--protocol-era", "modern", "--method", "tools/list", "--strict"],
        "session_list": [*tool_call, "session_list"],
        "error_analyze": [*tool_call, "error_analyze", "--tool-arg", f"session_id={session_id}"],
        "tool error": [*tool_call, "session_describe", "--tool-arg", "session_id=ses-nope"],
        "resources/list": ["--method", "resources/list"],
        "resources/templates/list": ["--method", "resources/templates/list"],
        "read sessions": [*read, "bunsui://sessions"],
        "read errors": [*read, f"bunsui://sessions/{session_id}/errors"],
        "prompts/list": ["--method", "prompts/list"],
        "prompts/get": [
            *["--method", "prompts/get", "--prompt-name", "diagnose_session"],
            *["--prompt-args", f"session_id={session_id}"],
        ],
    }


@pytest.fixture(scope="session")
def inspected(
    npm_tools: NpmTools, node_home: Path, failed_home: tuple[Path, str]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """`inspector --cli bunsui-mcp --home HOME <args>` for each of inspector_calls, run
    concurrently (each starts its own stdio server, which takes a second or two)."""
    home, session_id = failed_home
    server = ["--cli", BUNSUI_MCP, "--home", str(home)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(run_node, npm_tools, node_home, npm_tools.inspector, *server, *args)
            for name, args in inspector_calls(session_id).items()
        }
        return {name: future.result() for name, future in futures.items()}


def result_of(inspected: dict[str, subprocess.CompletedProcess[str]], name: str) -> dict[str, Any]:
    """The MCP result object an Inspector invocation printed; it must have exited 0."""
    result = inspected[name]
    assert result.returncode == 0, (name, result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_strict_schema_lint_passes(inspected, era):
    """`tools/list --strict` exits 6 on tool-schema portability errors, listed on stderr."""
    result = inspected[f"lint {era}"]
    assert result.returncode == 0, f"schema lint findings (exit {result.returncode}):\n" + (
        result.stderr
    )
    tools = {tool["name"]: tool for tool in json.loads(result.stdout)["tools"]}
    assert {"session_list", "error_analyze", "command_execute"} <= tools.keys()
    for tool in tools.values():
        assert tool["description"]
        assert tool["inputSchema"]["type"] == "object"
        assert tool["outputSchema"]["type"] == "object"


def test_inspector_calls_tools(inspected, failed_home):
    _, session_id = failed_home
    listed = result_of(inspected, "session_list")
    assert listed["isError"] is False
    sessions = listed["structuredContent"]["sessions"]
    assert [(s["session_id"], s["status"]) for s in sessions] == [(session_id, "failed")]
    assert json.loads(listed["content"][0]["text"]) == listed["structuredContent"]

    analysis = result_of(inspected, "error_analyze")
    assert analysis["isError"] is False
    assert analysis["structuredContent"]["session_id"] == session_id
    errors = analysis["structuredContent"]["errors"]
    assert [(e["job_id"], e["error_code"]) for e in errors] == [("transform", "LOCAL_MEMORY_LIMIT")]
    assert errors[0]["recovery_suggestions"]


def test_inspector_reports_a_tool_error(inspected):
    """A coded tool error is `isError: true` with structured `{code, message, details}`,
    which the Inspector prints (then its own error envelope on stderr) and exits 5 on."""
    result = inspected["tool error"]
    assert result.returncode == 5, (result.stdout, result.stderr)
    called, _ = json.JSONDecoder().raw_decode(result.stdout)
    assert called["isError"] is True
    assert called["structuredContent"]["code"] == "NOT_FOUND"


def test_inspector_reads_resources(inspected, failed_home):
    _, session_id = failed_home
    listed = result_of(inspected, "resources/list")
    uris = {r["uri"] for r in listed["resources"]}
    assert {"bunsui://sessions", "bunsui://audit/head"} <= uris
    assert all(r["mimeType"] == "application/json" for r in listed["resources"])

    templates = result_of(inspected, "resources/templates/list")
    assert "bunsui://sessions/{session_id}/errors" in {
        t["uriTemplate"] for t in templates["resourceTemplates"]
    }

    [content] = result_of(inspected, "read sessions")["contents"]
    assert content["uri"] == "bunsui://sessions"
    assert content["mimeType"] == "application/json"
    assert [s["session_id"] for s in json.loads(content["text"])["sessions"]] == [session_id]

    [content] = result_of(inspected, "read errors")["contents"]
    assert json.loads(content["text"])["errors"][0]["error_code"] == "LOCAL_MEMORY_LIMIT"


def test_inspector_gets_prompts(inspected, failed_home):
    _, session_id = failed_home
    prompts = {p["name"]: p for p in result_of(inspected, "prompts/list")["prompts"]}
    assert {"bunsui_operator", "diagnose_session", "recover_session"} <= prompts.keys()
    assert prompts["diagnose_session"]["arguments"] == [{"name": "session_id", "required": True}]

    [message] = result_of(inspected, "prompts/get")["messages"]
    assert message["role"] == "user"
    assert message["content"]["type"] == "text"
    assert f"Diagnose bunsui session {session_id}." in message["content"]["text"]
    assert "{session_id}" not in message["content"]["text"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_url(
    failed_home: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`bunsui-mcp --transport http` on loopback without tokens (it serves as ai-agent)."""
    home, _ = failed_home
    port = free_port()
    process = subprocess.Popen(
        [BUNSUI_MCP, "--transport", "http", "--port", str(port), "--home", str(home)],
        env=clean_env(),
        cwd=tmp_path_factory.mktemp("http-server"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"bunsui-mcp exited: {process.communicate()[1]}", pytrace=False)
                if time.monotonic() > deadline:
                    pytest.fail("bunsui-mcp did not listen within 30 s", pytrace=False)
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def capabilities(http_url: str) -> dict[str, Any]:
    """What the server advertises to the conformance client (the TS SDK, 2025-11-25)."""
    response = httpx2.post(
        http_url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bunsui-tests", "version": "0"},
            },
        },
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        body = json.loads(data[0])
    else:
        body = response.json()
    assert body["result"]["protocolVersion"] == "2025-11-25"
    return body["result"]["capabilities"]


@pytest.fixture
def conformance(npm_tools, node_home, http_url, tmp_path) -> Callable[[str], list[dict[str, Any]]]:
    """Runs one conformance scenario against the HTTP server; returns its checks, asserted
    all successful (a WARNING fails too: these are the scenarios the server must pass)."""

    def run(scenario: str) -> list[dict[str, Any]]:
        out = tmp_path / scenario
        result = run_node(
            npm_tools,
            node_home,
            npm_tools.conformance,
            "server",
            "--url",
            http_url,
            "--scenario",
            scenario,
            "-o",
            str(out),
        )
        reports = list(out.glob(f"server-{scenario}-*/checks.json"))
        assert len(reports) == 1, (result.returncode, result.stdout, result.stderr)
        checks = json.loads(reports[0].read_text())
        bad = [c for c in checks if c["status"] not in {"SUCCESS", "INFO"}]
        assert result.returncode == 0, (result.stdout, result.stderr, bad)
        assert not bad, bad
        assert any(c["status"] == "SUCCESS" for c in checks), checks
        return checks

    return run


def test_server_advertises_subscribe(capabilities):
    """2025-era clients see resources.subscribe, which the subscribe scenarios exercise."""
    assert capabilities["resources"]["subscribe"] is True
    assert {"tools", "resources", "prompts"} <= capabilities.keys()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(conformance, scenario):
    conformance(scenario)


@pytest.mark.parametrize("scenario", list(OPTIONAL_SCENARIOS))
def test_conformance_scenario_of_advertised_capability(conformance, capabilities, scenario):
    capability = OPTIONAL_SCENARIOS[scenario]
    if capability not in capabilities:
        pytest.skip(f"the server does not advertise the {capability} capability")
    conformance(scenario)
