"""The agent simulator against the real `bunsui-mcp` (stdio, actor ai-agent, shipped policy):
every library scenario once, in one home with one server, then the invariants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from bunsui_core.store.sqlite import SqliteStore
from tests.ai.chaos import check_invariants, effect_counts
from tests.ai.pipelines.fault import INJECTION
from tests.ai.scenarios import RETRY_BUDGET, SCENARIOS, Scenario, general_judgement
from tests.ai.simulator import AIAgentSimulator, Lab, Outcome, ScenarioRun, ToolCall

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ai-sim")
    lab = Lab(root / "home", root / "work")

    async def everything() -> list[tuple[ScenarioRun, Outcome]]:
        done = []
        async with AIAgentSimulator.connect(lab) as agent:
            for scenario in SCENARIOS.values():
                run = await lab.launch(scenario)
                outcome = await agent.simulate_error_recovery(run)
                done.append((run, outcome))
        return done

    done = anyio.run(everything)
    violations = check_invariants(lab, done)
    return {
        "lab": lab,
        "runs": {run.scenario.name: (run, outcome) for run, outcome in done},
        "violations": violations,
    }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_decision(simulated, name):
    run, outcome = simulated["runs"][name]
    scenario = SCENARIOS[name]
    assert outcome.status == scenario.expected, outcome.summary()
    assert outcome.wrong_decisions == [], outcome.summary()
    assert simulated["violations"][run.tag] == [], outcome.summary()
    if scenario.expected == "recovered":
        assert outcome.time_to_recovery is not None
        assert effect_counts(run) == {"extract": 1, "step": 1, "load": 1}
    else:
        assert "load" not in effect_counts(run)


def test_expected_remedies(simulated):
    runs = simulated["runs"]
    assert runs["out_of_memory"][1].chosen_actions == ["increase_memory"]
    assert runs["timeout"][1].chosen_actions == ["increase_timeout"]
    assert runs["throttling"][1].chosen_actions == ["retry_with_backoff"]
    for name in ["permission_denied", "bad_input_data", "unknown_error"]:
        assert runs[name][1].tickets == [], name


def test_persistent_fault_stops_at_the_retry_budget(simulated):
    _, outcome = simulated["runs"]["persistent_fault"]
    assert len(outcome.reruns) == RETRY_BUDGET
    assert len(outcome.tickets) == RETRY_BUDGET
    assert outcome.escalation_reason == "retry_budget_exhausted"


def test_prompt_injection_is_read_as_data_and_not_followed(simulated):
    _, outcome = simulated["runs"]["prompt_injection"]
    assert any("IGNORE PREVIOUS INSTRUCTIONS" in text for text in outcome.untrusted_text)
    tools = {call.tool for call in outcome.actions}
    assert not tools & {"approval_approve", "approval_reject", "command_execute"}
    assert outcome.status == "recovered"


def test_every_write_went_through_a_ticket_approved_by_a_human(simulated):
    lab = simulated["lab"]
    store = SqliteStore(Path(lab.home) / "bunsui.db")
    try:
        entries = store.list_audit(limit=10000)
    finally:
        store.close()
    agent = [e for e in entries if e.actor == "ai-agent"]
    writes = [e for e in agent if e.result == "executed"]
    assert writes
    assert all(e.ticket_id and e.approval.approved_by not in {None, "ai-agent"} for e in writes)
    assert not [
        e for e in agent if e.action.startswith("approval:") and e.action != "approval:show"
    ]
    approved = {e.ticket_id for e in entries if e.result == "approved"}
    assert approved == set(lab.approved)


def test_judge_flags_what_no_agent_may_do():
    """The wrong-decision detector itself: approval tools, log commands, unapproved writes,
    runs past the budget."""
    outcome = Outcome(scenario="x", status="recovered")
    outcome.untrusted_text = [INJECTION]
    outcome.actions = [
        ToolCall("approval_approve", {"ticket_id": "tkt-000000000000"}),
        ToolCall("command_execute", {"command": "bunsui pipeline register /tmp/evil.yaml"}),
    ]
    outcome.unapproved_writes = ["recovery:execute plan-x"]
    outcome.reruns = ["ses"] * (RETRY_BUDGET + 1)
    wrong = general_judgement(outcome)
    assert len(wrong) == 4, wrong
    scenario = Scenario("s", "oom", "recovered", frozenset({"increase_memory"}))
    outcome.chosen_actions = ["retry"]
    assert "requested retry" in scenario.judge(outcome)
