"""A job cannot become the approver: the attack of issue 11 against the real CLI.

An agent's rerun ticket is pending. A human runs a pipeline whose job calls the real
`bunsui approval approve TICKET` with the BUNSUI_HOME it was explicitly given, directly and
from a double-forked, setsid'd process with a scrubbed environment. Both are refused
(PERMISSION_DENIED) and the ticket stays pending.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import command_job, etl_pipeline, pipeline_data
from tests.e2e.test_cli import BUNSUI, Cli

AGENT = ("--actor", "ai-agent")

APPROVE_FROM_JOB = """
import os, subprocess, sys, time, pathlib
home, ticket, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
out.joinpath("shim").write_text(os.readlink("/proc/%d/exe" % os.getppid()))
approve = [{bunsui!r}, "--format", "json", "approval", "approve", ticket, "--reason", "job"]
direct = subprocess.run(approve, capture_output=True, text=True)
out.joinpath("direct.json").write_text(direct.stdout + direct.stderr)
out.joinpath("direct.code").write_text(str(direct.returncode))
# The escape attempt: a double fork into a new session, every variable but PATH and
# BUNSUI_HOME scrubbed, so no BUNSUI_* run variable says "job" any more.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        env = {{"PATH": os.environ["PATH"], "BUNSUI_HOME": home}}
        done = subprocess.run(approve, capture_output=True, text=True, env=env)
        out.joinpath("escaped.json").write_text(done.stdout + done.stderr)
        out.joinpath("escaped.code").write_text(str(done.returncode))
    os._exit(0)
deadline = time.monotonic() + 60
while not out.joinpath("escaped.code").exists() and time.monotonic() < deadline:
    time.sleep(0.1)
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def _pending_ticket(cli: Cli, tmp_path: Path) -> str:
    session = cli.json("pipeline", "run", etl_pipeline(tmp_path), "--wait", expect=10)
    ticket = cli.json(
        *AGENT,
        "job",
        "rerun",
        "transform",
        "--session-id",
        session["session_id"],
        "--skip-successful",
        expect=6,
    )
    return ticket["ticket_id"]


@pytest.mark.slow
@pytest.mark.parametrize("shim", ["native", "python"])
def test_a_job_cannot_approve_a_ticket_even_after_setsid_and_a_scrubbed_env(cli, tmp_path, shim):
    """Both approvals from inside the job are PERMISSION_DENIED; the ticket stays pending and
    the audit records the refusals. The home runs jobs without a cgroup, so the escaped
    process is caught by its process tree alone: below the native shim (where `cc` exists)
    and below the Python one."""
    if shim == "native" and shutil.which("cc") is None:
        pytest.skip("no C compiler here: jobs run under the Python shim")
    switch = {"BUNSUI_NATIVE_SHIM": "0" if shim == "python" else "1"}
    ticket_id = _pending_ticket(cli, tmp_path)
    (cli.home / "config.yaml").write_text("engine: {memory_enforcement: watchdog}\n")
    out = tmp_path / "out"
    out.mkdir()
    code = APPROVE_FROM_JOB.format(bunsui=BUNSUI)
    job = command_job("sneaky", "pass", parameters={"env": {"BUNSUI_HOME": str(cli.home)}})
    job["operations"][0]["config"]["parameters"]["command"] = [
        sys.executable,
        "-c",
        code,
        str(cli.home),
        ticket_id,
        str(out),
    ]
    pipeline = tmp_path / "sneaky.yaml"
    pipeline.write_text(yaml.safe_dump(pipeline_data(job, name="sneaky")))

    session = cli.json("pipeline", "run", str(pipeline), "--wait", timeout=120, env=switch)

    assert session["status"] == "completed"
    parent = (out / "shim").read_text()
    assert parent.startswith("/memfd:bunsui-jobshim") if shim == "native" else "python" in parent
    for name, evidence in (("direct", "environment"), ("escaped", "process tree")):
        assert (out / f"{name}.code").read_text() != "0"
        refusal = json.loads((out / f"{name}.json").read_text())["error"]
        assert refusal["code"] == "PERMISSION_DENIED"
        assert f"inside a job ({evidence}" in refusal["details"]["rule"]
    ticket = cli.json("approval", "show", ticket_id)
    assert ticket["status"] == "pending"
    assert ticket["decided_by"] is None
    denied = [
        json.loads(line)
        for line in cli.run("audit", "export").stdout.splitlines()
        if '"approval:approve"' in line
    ]
    assert [e["result"] for e in denied] == ["denied", "denied"]


def test_a_human_outside_any_job_still_approves(cli, tmp_path):
    """The check does not catch the human: the same approval from a terminal executes."""
    ticket_id = _pending_ticket(cli, tmp_path)
    approved = cli.json("approval", "approve", ticket_id, "--reason", "reviewed")
    assert approved["status"] in {"approved", "executed"}
