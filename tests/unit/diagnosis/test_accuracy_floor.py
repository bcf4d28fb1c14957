"""Diagnosis accuracy never falls below what the README states.

The rule layers (run facts, taxonomy, catalog) do not learn from the corpus, so every corpus
message is held out for them: checking their rows alone (no model, so no reading yields to
it) is fast and exact. The full leave-one-family-out evaluation, which retrains the text
model for every family, is slow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.diagnosis.training import CORPUS_DIR, load_corpus
from tests.eval.diagnosis import leave_one_family_out, summarize, training_examples

README = Path(__file__).parents[3] / "README.md"
ROUNDING = 0.0005
_ROW = re.compile(
    r"^\| (?:\*\*)?(?P<name>[a-z_ ]+?)(?:\*\*)? \| (?P<decided>\d+)[^|]*\| "
    r"(?P<category>[\d.]+)% \| (?P<action>[\d.]+)% \|$",
    re.MULTILINE,
)


def stated() -> dict[str, tuple[int, float, float]]:
    """The README's evaluation tables: layer (or `<layer> alone`) -> (messages decided,
    category, first action)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("How well it recognises errors") :]
    return {
        m["name"]: (int(m["decided"]), float(m["category"]) / 100, float(m["action"]) / 100)
        for m in _ROW.finditer(section[:4000])
    }


def stated_slips() -> int:
    """How many messages labelled DEPENDENCY or PERMISSION the README says are called
    transient out of family."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(
        r"(\d+) messages labelled DEPENDENCY or PERMISSION are called transient", text
    )
    assert found, "the README states no count of transient slips"
    return int(found[1])


def test_readme_states_a_row_for_every_rule_layer_and_the_total():
    """The table the floor is checked against is really there."""
    rules = {"run_facts", "taxonomy", "catalog"}
    assert {*rules, *(f"{r} alone" for r in rules), "total"} <= set(stated())


@pytest.fixture(scope="module")
def rules_only() -> dict[str, Any]:
    """The corpus classified by the rule layers alone (they never train on it)."""
    return summarize(leave_one_family_out(load_corpus(CORPUS_DIR), use_model=False))


@pytest.mark.parametrize("layer", ["run_facts", "taxonomy", "catalog"])
def test_rule_layers_hold_their_stated_accuracy(layer, rules_only):
    """Each rule layer alone decides as many corpus messages, as accurately, as the README
    says."""
    decided, category, action = stated()[f"{layer} alone"]
    measured = rules_only["layers"][layer]
    assert measured["decided"] >= decided
    assert measured["category_accuracy"] >= category - ROUNDING
    assert measured["first_action_accuracy"] >= action - ROUNDING


@pytest.mark.slow
def test_held_out_total_holds_its_stated_accuracy():
    """Leave-one-family-out over the whole corpus is at least as good as the README says,
    and no missing module, file or permission is called transient more often than stated."""
    _, category, action = stated()["total"]
    summary = summarize(leave_one_family_out(load_corpus(CORPUS_DIR)))
    assert summary["category_accuracy"] >= category - ROUNDING
    assert summary["first_action_accuracy"] >= action - ROUNDING
    assert summary["transient_for_missing_or_permission"] <= stated_slips()


def test_no_held_out_message_is_trained_on():
    """A message quoted under two families is held out with its family in both: the model
    of a fold never trains on the text it is then asked about."""
    examples = load_corpus(CORPUS_DIR)
    for family in {e.family for e in examples}:
        held = {e.message.strip() for e in examples if e.family == family}
        trained = {e.message.strip() for e in training_examples(examples, family)}
        assert not held & trained, family
