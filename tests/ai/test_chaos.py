"""A small fixed-seed chaos subset: every chaos kind once (seed 7), invariants after the run."""

from __future__ import annotations

import anyio
import pytest

from bunsui_core.store.sqlite import BUSY_TIMEOUT_SECONDS
from tests.ai.chaos import CHAOS_KINDS, chaos_cases
from tests.ai.scorecard import cases_for_run, one_run, render, tabulate
from tests.ai.simulator import BUSY_TRIES

pytestmark = pytest.mark.slow

SEED = 7


def test_cases_are_reproducible_from_the_seed():
    first = [c.describe() for c in chaos_cases(SEED)]
    assert first == [c.describe() for c in chaos_cases(SEED)]
    assert first != [c.describe() for c in chaos_cases(SEED + 1)]
    assert [c.kind for c in chaos_cases(SEED)] == CHAOS_KINDS


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("chaos")
    return anyio.run(one_run, SEED, 0, root, CHAOS_KINDS)


def test_every_chaos_kind_ran(outcomes):
    assert sorted(o.scenario for o in outcomes) == sorted(CHAOS_KINDS)


@pytest.mark.parametrize("kind", CHAOS_KINDS)
def test_chaos_kind_sound_and_invariants_hold(outcomes, kind):
    [outcome] = [o for o in outcomes if o.scenario == kind]
    assert outcome.status in {"recovered", "escalated"}, outcome.summary()
    assert outcome.wrong_decisions == [], (outcome.summary(), outcome.notes)
    assert outcome.invariant_violations == [], (outcome.summary(), outcome.notes)


def test_scorecard_table(outcomes):
    rows = tabulate(outcomes)
    assert sum(r["runs"] for r in rows.values()) == len(CHAOS_KINDS)
    card = {"seed": SEED, "runs": 1, "seconds": 0, "scenarios": rows, "problems": []}
    card["totals"] = {
        k: sum(r[k] for r in rows.values())
        for k in ["runs", "recovered", "escalated", "wrong", "violations"]
    }
    table = render(card)
    assert "runner_killed" in table
    assert "median_ttr_s" in table


# ---- store_locked: bunsui's own store busy -------------------------------------------------


def test_store_locked_case_locks_past_the_busy_timeout():
    """The fixed seed's busy-store case holds the lock for longer than bunsui waits (5 s)
    after the agent's request to execute its plan (which goes `delay` into the first lock)."""
    [case] = cases_for_run(SEED, 0, ["store_locked"])
    assert case.bunsui_fault == "store_locked"
    (delay, seconds), *_ = case.locks
    assert seconds - delay > BUSY_TIMEOUT_SECONDS
    assert case.describe() == cases_for_run(SEED, 0, ["store_locked"])[0].describe()


def test_store_locked_is_retried_as_the_same_call_and_nothing_runs_twice(outcomes):
    """Under a lock held past the busy timeout, bunsui answered STORE_LOCKED (to the agent or
    to the human's approval); each was retried as the same call (bounded), one ticket and
    one rerun were asked for, and the failure was recovered."""
    [outcome] = [o for o in outcomes if o.scenario == "store_locked"]
    locked = [a for a in outcome.actions if a.code == "STORE_LOCKED"]
    assert locked or outcome.human_busy_retries, (outcome.summary(), outcome.notes)
    assert outcome.busy_retries == len(locked) < BUSY_TRIES
    assert outcome.human_busy_retries < BUSY_TRIES
    for index, call in enumerate(outcome.actions[:-1]):
        if call.code == "STORE_LOCKED":  # the very next call is the same call again
            retry = outcome.actions[index + 1]
            assert (retry.tool, retry.arguments) == (call.tool, call.arguments)
    assert outcome.status == "recovered", outcome.summary()
    assert len(outcome.tickets) == len(set(outcome.tickets)) == 1
    assert len(outcome.reruns) == 1
