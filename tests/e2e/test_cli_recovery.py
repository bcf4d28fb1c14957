"""Diagnosis and recovery from the shell: every printed command is run exactly as printed."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.conftest import etl_pipeline
from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def run_printed(cli: Cli, command: str) -> dict:
    """Run a `bunsui ...` line as printed (shlex split, no shell), JSON output."""
    words = shlex.split(command)
    assert words[0] == "bunsui"
    return cli.json(*words[1:])


def test_out_of_memory_is_analyzed_recovered_from_printed_commands_and_learned(cli, tmp_path):
    """A real OOM in the local engine: classified, the printed suggestion raises memory, the
    rerun completes without running extract again, and the learned confidence rises."""
    pipeline = etl_pipeline(tmp_path)
    failed = cli.json("pipeline", "run", pipeline, "--wait", expect=10)
    session_id = failed["session_id"]

    analysis = cli.json("error", "analyze", "--session-id", session_id)
    [error] = analysis["errors"]
    assert error["job_id"] == "transform"
    assert error["error_code"] == "LOCAL_MEMORY_LIMIT"
    assert error["context"]["memory_limit_mb"] == 96
    top = error["recovery_suggestions"][0]
    assert top["action"] == "increase_memory"
    before = top["confidence"]

    plan = cli.json("recovery", "suggest", "--session-id", session_id)["recovery_plans"][0]
    assert plan["action"] == "increase_memory"
    for step in plan["steps"]:
        run_printed(cli, step["command"])

    rerun = cli.json("session", "list", "--limit", "1")["sessions"][0]
    assert rerun["session_id"] != session_id
    watched = cli.run("session", "watch", rerun["session_id"])
    assert watched.returncode == 0, watched.stdout + watched.stderr
    jobs = {
        j["job_id"]: j["status"]
        for j in cli.json("job", "list", "--session-id", rerun["session_id"])["jobs"]
    }
    assert jobs == {"extract": "skipped", "transform": "completed", "load": "completed"}
    assert (tmp_path / "extract_runs.log").read_text() == "run\n"

    again = cli.json("error", "analyze", "--session-id", session_id)["errors"][0]
    learned = again["recovery_suggestions"][0]
    assert learned["action"] == "increase_memory"
    assert learned["confidence"] > before
    totals = cli.json("error", "resolutions", "--fingerprint", error["fingerprint"])["totals"]
    assert totals == [
        {
            "action": "increase_memory",
            "successes": 1,
            "failures": 0,
            "confidence": learned["confidence"],
        }
    ]
