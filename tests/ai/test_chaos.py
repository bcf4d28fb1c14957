"""A small fixed-seed chaos subset: every chaos kind once (seed 7), invariants after the run."""

from __future__ import annotations

import anyio
import pytest

from tests.ai.chaos import CHAOS_KINDS, chaos_cases
from tests.ai.scorecard import one_run, render, tabulate

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
