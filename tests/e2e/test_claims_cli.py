"""Claims from the shell: twenty agent processes race for one failed session through the
installed `bunsui` script and a real SQLite file; exactly one holds it afterwards."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bunsui_core.model.session import Session, SessionStatus, new_id
from tests.e2e.test_cli import BUNSUI, Cli

RACERS = 20


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


@pytest.fixture
def failed(cli: Cli) -> str:
    """A failed session in the home's store (how it failed does not matter to claims)."""
    cli.json("session", "list")  # creates the home and its database
    store = cli.store()
    try:
        session = store.create_session(
            Session(
                session_id=new_id("ses"),
                pipeline_id="etl",
                pipeline_version=1,
                status=SessionStatus.FAILED,
            )
        )
    finally:
        store.close()
    return session.session_id


@pytest.mark.slow
def test_twenty_processes_racing_for_one_claim_exactly_one_wins(cli: Cli, failed: str):
    """Each loser exits 4 with CONFLICT naming the one winner, which the session shows."""
    env = {**os.environ, "BUNSUI_HOME": str(cli.home)}
    racers = [
        subprocess.Popen(
            [BUNSUI, "--format", "json", "--actor", f"ai-agent-{n}", "session", "claim", failed],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(RACERS)
    ]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in racers]
    for racer in racers:
        racer.stdout.close()
        racer.stderr.close()
    winners = [json.loads(out)["claimed_by"] for code, out, _ in results if code == 0]
    losers = [json.loads(out)["error"] for code, out, _ in results if code == 4]
    assert len(winners) == 1, results
    assert len(losers) == RACERS - 1, results
    assert {error["code"] for error in losers} == {"CONFLICT"}
    assert {error["details"]["claimed_by"] for error in losers} == set(winners)
    [listed] = cli.json("session", "list")["sessions"]
    assert (listed["session_id"], listed["claimed_by"]) == (failed, winners[0])
    events = [
        json.loads(line)
        for line in cli.run("events", "tail", "--limit", "1000").stdout.splitlines()
    ]
    assert [e["status"] for e in events if e["kind"] == "claim"] == ["claimed"]
