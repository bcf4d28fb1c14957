"""Holes a security review found, closed: each test fails on the code before its fix."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client

from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.errors import PipelineInvalidError
from bunsui_core.model.pipeline_loader import parse_pipeline_text
from bunsui_mcp.server import build_server
from tests.conftest import command_job, pipeline_data

OPERATOR = getpass.getuser()
AGENT = "ai-agent"


def write_pipeline(path: Path, code: str) -> str:
    path.write_text(yaml.safe_dump(pipeline_data(command_job("only", code), name="p")))
    return str(path)


def test_an_approved_request_runs_only_the_file_content_that_was_requested(settings, tmp_path):
    """The ticket binds the pipeline file's content: editing the file after the request makes
    the approval fail (CONFLICT) instead of running the new content."""
    gateway = Gateway(settings)
    path = write_pipeline(tmp_path / "p.yaml", "pass")
    ticket = gateway.invoke(AGENT, "pipeline:register", {"file": path})
    write_pipeline(tmp_path / "p.yaml", "open('/tmp/should-not-run', 'w')")
    decided = gateway.invoke(OPERATOR, "approval:approve", {"ticket_id": ticket.ticket_id})
    assert decided.status == "failed"
    assert decided.error["code"] == "CONFLICT"
    assert gateway.invoke(OPERATOR, "pipeline:list", {}).pipelines == []


def test_an_unchanged_file_is_registered_after_approval(settings, tmp_path):
    """The same request with the file untouched executes; its path was made absolute."""
    gateway = Gateway(settings)
    path = write_pipeline(tmp_path / "p.yaml", "pass")
    ticket = gateway.invoke(AGENT, "pipeline:register", {"file": path})
    assert ticket.arguments["file"] == str(Path(path).resolve())
    decided = gateway.invoke(OPERATOR, "approval:approve", {"ticket_id": ticket.ticket_id})
    assert decided.status == "executed"


@pytest.mark.parametrize(
    "text",
    [
        "name: x\njobs: &a [*a]\n",
        "a: &x [1, 2]\nb: &y [*x, *x]\nc: [*y, *y]\nname: p\njobs: []\n",
    ],
)
def test_yaml_aliases_are_refused(text):
    """Anchors and aliases could expand a tiny file without bound (or loop): refused."""
    with pytest.raises(PipelineInvalidError) as caught:
        parse_pipeline_text(text)
    assert "aliases are not allowed" in caught.value.details["problems"][0]["message"]


def test_a_read_only_policy_makes_the_mcp_server_write_nothing(tmp_path):
    """`read_only: true` in the policy (not only --read-only) keeps the server's home empty."""
    policy = tmp_path / "ro.yaml"
    shutil.copy(Path(__file__).parents[3] / "policies" / "default.yaml", policy)
    policy.write_text(policy.read_text() + "\nread_only: true\n")
    home = tmp_path / "home"
    server = build_server(Settings.resolve(home, policy=policy), AGENT)

    async def agent() -> None:
        async with Client(server) as client:
            result = await client.call_tool("session_list", {})
            assert not result.is_error, result.structured_content
            await anyio.sleep(0.7)  # let the event poller run once

    anyio.run(agent)
    assert not home.exists() or list(home.iterdir()) == []


def test_unparsable_command_lines_are_audited(settings):
    """Probing with command lines that do not parse leaves a trace in the audit log."""
    server = build_server(settings, AGENT)

    async def agent() -> dict:
        async with Client(server) as client:
            result = await client.call_tool(
                "command_execute", {"command": "bunsui approval approve tkt-x --bogus"}
            )
            return result.structured_content

    assert anyio.run(agent)["code"] == "INVALID_ARGUMENT"
    entries = Gateway(settings).invoke(OPERATOR, "audit:list", {"actor": AGENT}).entries
    assert [(e.action, e.result, e.error_code) for e in entries] == [
        ("command_execute", "failed", "INVALID_ARGUMENT")
    ]
