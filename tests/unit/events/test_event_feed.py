"""The event feed: what `events tail`, `AIInterface.monitor_pipelines()` and MCP
notifications are built on. Real sessions on the local engine, real SQLite."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import ResourceUpdatedNotification

from bunsui_core.actions import Gateway
from bunsui_core.ai_interface import AIInterface
from tests.conftest import command_job, pipeline_data

OPERATOR = getpass.getuser()
BUNSUI = str(Path(sys.executable).parent / "bunsui")


def quick_pipeline(tmp_path: Path, ok: bool = True) -> str:
    path = tmp_path / ("ok.yaml" if ok else "bad.yaml")
    code = "pass" if ok else "raise SystemExit(3)"
    # One pipeline per file: a file may not silently version another file's pipeline.
    name = "quick" if ok else "quick-failing"
    path.write_text(json.dumps(pipeline_data(command_job("only", code), name=name)))
    return str(path)


def test_session_lifecycle_is_in_the_feed_in_order(settings, tmp_path):
    """Queued, running, completed: one event each, in commit order, resumable by cursor."""
    gateway = Gateway(settings)
    start = gateway.invoke(OPERATOR, "events:tail", {"limit": 1}).next_after_seq
    run = gateway.invoke(
        OPERATOR, "pipeline:run", {"pipeline": quick_pipeline(tmp_path), "wait": True}
    )
    page = gateway.invoke(OPERATOR, "events:tail", {"after_seq": start})
    mine = [(e.kind, e.id, e.status) for e in page.events]
    assert mine == [
        ("session", run.session_id, "queued"),
        ("session", run.session_id, "running"),
        ("session", run.session_id, "completed"),
    ]
    assert [e.seq for e in page.events] == sorted(e.seq for e in page.events)
    again = gateway.invoke(OPERATOR, "events:tail", {"after_seq": page.next_after_seq})
    assert again.events == []
    assert page.events[0].uri == f"bunsui://sessions/{run.session_id}"


def test_ticket_changes_are_in_the_feed(settings):
    """A ticket's request and decision are events, so a watcher learns the outcome."""
    gateway = Gateway(settings)
    start = gateway.invoke(OPERATOR, "events:tail", {"limit": 1}).next_after_seq
    ticket = gateway.invoke(
        "ai-agent",
        "error:learn",  # names no stored thing: a request for a missing one is NOT_FOUND
        {"error_code": "LOCAL_MEMORY_LIMIT", "action": "increase_memory", "outcome": "success"},
    )
    gateway.invoke(OPERATOR, "approval:reject", {"ticket_id": ticket.ticket_id})
    events = gateway.invoke(OPERATOR, "events:tail", {"after_seq": start}).events
    assert [(e.kind, e.id, e.status) for e in events] == [
        ("ticket", ticket.ticket_id, "pending"),
        ("ticket", ticket.ticket_id, "rejected"),
    ]


def test_monitor_pipelines_yields_changes_from_now_on(settings, tmp_path):
    """The Python API's async iterator sees a session run by another process, from now on."""
    ai = AIInterface(settings, actor="ai-agent")
    Gateway(settings).invoke(
        OPERATOR, "pipeline:run", {"pipeline": quick_pipeline(tmp_path), "wait": True}
    )

    async def watch() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        async with anyio.create_task_group() as tasks:

            async def consume() -> None:
                async for event in ai.monitor_pipelines(poll_interval=0.05):
                    seen.append((event.id, event.status))
                    if event.status in {"completed", "failed"}:
                        tasks.cancel_scope.cancel()

            tasks.start_soon(consume)
            await anyio.sleep(0.3)
            env = {**os.environ, "BUNSUI_HOME": str(settings.home)}
            await anyio.run_process(
                [BUNSUI, "pipeline", "run", quick_pipeline(tmp_path, ok=False), "--wait"],
                env=env,
                check=False,
            )
            with anyio.fail_after(20):
                await anyio.sleep_forever()
        return seen

    seen = anyio.run(watch)
    assert [status for _, status in seen] == ["queued", "running", "failed"]
    assert len({session for session, _ in seen}) == 1


def test_cli_tail_prints_json_lines_and_follows(settings, tmp_path):
    """`events tail` prints one JSON event per line; `--follow` keeps printing new ones."""
    env = {**os.environ, "BUNSUI_HOME": str(settings.home)}
    follower = subprocess.Popen(
        [BUNSUI, "events", "tail", "--follow", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ran = subprocess.run(
            [BUNSUI, "pipeline", "run", quick_pipeline(tmp_path), "--wait"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        lines = [json.loads(follower.stdout.readline()) for _ in range(3)]
    finally:
        follower.terminate()
        follower.communicate(timeout=10)
    assert [e["status"] for e in lines] == ["queued", "running", "completed"]
    resumed = subprocess.run(
        [BUNSUI, "events", "tail", "--after-seq", str(lines[0]["seq"])],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert [json.loads(line)["seq"] for line in resumed.stdout.splitlines()] == [
        lines[1]["seq"],
        lines[2]["seq"],
    ]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_mcp_subscribers_are_told_when_a_ticket_changes(settings, mode):
    """2026-07-28 clients (subscriptions/listen) and 2025-era clients (resources/subscribe)
    get a resource-updated notification for the ticket when a human decides it."""
    from bunsui_mcp.server import build_server  # noqa: PLC0415 - keeps the MCP SDK out of other tests

    server = build_server(settings, "ai-agent")
    gateway = Gateway(settings)
    arguments = {  # names no stored thing: a request for a missing one is NOT_FOUND
        "error_code": "LOCAL_MEMORY_LIMIT",
        "action": "increase_memory",
        "outcome": "success",
    }

    async def agent() -> str:
        updated: list[str] = []

        async def on_message(message: object) -> None:
            if isinstance(message, ResourceUpdatedNotification):
                updated.append(message.params.uri)

        async with Client(server, mode=mode, message_handler=on_message) as client:
            ticket = (await client.call_tool("error_learn", arguments)).structured_content
            uri = ticket["resource_uri"]
            decide = anyio.to_thread.run_sync
            if mode == "legacy":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    await client.subscribe_resource(uri)
                await decide(
                    lambda: gateway.invoke(
                        OPERATOR, "approval:reject", {"ticket_id": ticket["ticket_id"]}
                    )
                )
                with anyio.fail_after(10):
                    while uri not in updated:
                        await anyio.sleep(0.05)
                return uri
            async with client.listen(resource_subscriptions=[uri]) as events:
                await decide(
                    lambda: gateway.invoke(
                        OPERATOR, "approval:reject", {"ticket_id": ticket["ticket_id"]}
                    )
                )
                with anyio.fail_after(10):
                    async for event in events:
                        return event.uri
        raise AssertionError("no notification")

    uri = anyio.run(agent)
    assert uri.startswith("bunsui://tickets/tkt-")
