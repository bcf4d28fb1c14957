"""Insights from real runs: a tiny job given 512 MiB, run through the engine a few times,
then listed, shown with its chart, applied as an agent (a ticket) and as a person (the
pipeline changes and the next run uses the new limit) with the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import command_job, pipeline_data
from tests.e2e.test_cli import Cli, write_pipeline

pytestmark = pytest.mark.slow  # four real pipeline runs and a dozen CLI processes

AGENT = ("--actor", "ai-agent")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_over_provisioned_job_is_right_sized_from_real_runs(cli: Cli, tmp_path: Path) -> None:
    """Three real runs peaking far below 512 MiB give a cost insight; an agent's apply is a
    pending ticket, a person's apply registers version 2 and the next run runs under it."""
    data = pipeline_data(
        command_job("small", "print(sum(range(1000)))", parameters={"memory": 512}),
        name="tiny",
    )
    path = write_pipeline(tmp_path / "tiny.yaml", data)
    for _ in range(3):
        assert cli.json("pipeline", "run", path, "--wait")["status"] == "completed"

    listed = cli.json("insight", "list", "--pipeline", "tiny", "--kind", "cost")["insights"]
    [insight] = listed
    assert (insight["rule"], insight["job_id"], insight["status"]) == (
        "memory_overprovisioned",
        "small",
        "open",
    )
    peaks = [p["value"] for p in insight["evidence"]["points"]]
    assert len(peaks) == 3
    assert all(0 < peak < 256 for peak in peaks)  # real RSS of a tiny Python process
    after = insight["suggestion"]["change"]["memory_mb"]["after"]
    assert after < 512
    assert insight["suggestion"]["command"] == (
        f"bunsui pipeline update-config tiny --job small --memory {after}"
    )

    table = cli.run("insight", "show", insight["insight_id"], fmt="table", env={"COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    assert "peak_rss_mb per run (MiB), limit 512" in table.stdout
    assert "┤" in table.stdout  # the chart's axis
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    shown = cli.json("insight", "show", insight["insight_id"])
    assert shown["insight_id"] == insight["insight_id"]  # JSON carries no chart

    pending = cli.json(*AGENT, "insight", "apply", insight["insight_id"], expect=6)
    assert pending["status"] == "pending_approval"
    assert cli.json("pipeline", "describe", "tiny")["version"] == 1

    applied = cli.json("insight", "apply", insight["insight_id"])
    assert applied["result"]["diff"] == {"memory_mb": {"before": 512, "after": after}}
    detail = cli.json("pipeline", "describe", "tiny")
    assert detail["version"] == 2
    config = detail["definition"]["jobs"][0]["operations"][0]["config"]
    assert config["parameters"]["memory"] == after

    ran = cli.json("pipeline", "run", "tiny", "--wait")
    assert (ran["status"], ran["pipeline_version"]) == ("completed", 2)
    jobs = cli.json("job", "describe", "small", "--session-id", ran["session_id"])
    limits = {a["memory_limit_mb"] for op in jobs["operations"] for a in op["attempts"]}
    assert limits == {after}
    status = cli.json("insight", "list", "--pipeline", "tiny", "--status", "applied")
    assert [i["outcome"]["runs_since"] for i in status["insights"]] == [1]
