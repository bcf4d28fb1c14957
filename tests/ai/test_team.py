"""Three agents, each its own real `bunsui-mcp --actor ai-agent-N`, clear a queue of ten failed
sessions of different kinds while a simulated human approves; a fourth agent claims two of
them and dies first. Coordination is judged from the store and the audit log."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.ai.simulator import Lab
from tests.ai.team import QUEUE, run_team

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("ai-team")
    lab = Lab(root / "home", root / "work")
    return anyio.run(lambda: run_team(lab, 3, kill=2))


def test_every_failure_is_handled_once(team):
    """No failure gets two tickets, and every one ends recovered or escalated."""
    card = team.scorecard()
    assert team.duplicated_work == 0, card
    assert team.unowned_at_end == [], card
    assert card["recovered"] + card["escalated"] == len(QUEUE), card


def test_all_three_agents_took_work(team):
    """The queue is shared: with ten failures, every agent handles some."""
    assert all(team.outcomes[f"ai-agent-{n}"] for n in (1, 2, 3)), team.scorecard()


def test_escalations_are_records_agents_honour(team):
    """Every escalation is followed by no agent write on that session."""
    assert team.escalations > 0
    assert team.escalations_honoured == team.escalations, team.scorecard()


def test_a_killed_agents_claims_are_taken_over(team):
    """The dead agent's leases lapse and other agents take the failures over."""
    assert len(team.killed_claims) == 2
    assert sorted(team.taken_over) == sorted(team.killed_claims), team.scorecard()
