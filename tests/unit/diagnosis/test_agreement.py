"""`python -m tests.eval.agreement`: how often two labellers agree, and diagnosis on each side."""

from __future__ import annotations

import json

import pytest

from bunsui_core.diagnosis.training import Example
from tests.eval.agreement import SecondLabel, agreement, kappa, main, report


def _pair(first: str, second: str, *, looked_up: bool = False, n: int = 0):
    example = Example(f"f-{n:03d}", "f", "m", first, "escalate", False)
    return example, SecondLabel(example.id, second, "escalate", False, looked_up)


def test_kappa_discounts_the_agreement_chance_alone_gives():
    """Two labellers who always answer one category agree fully by chance alone: kappa is
    undefined and says so; agreeing on every message of two balanced categories is kappa 1,
    and two misses in six of them leave a third."""
    always = [_pair("DATA", "DATA", n=i) for i in range(3)]
    balanced = [_pair(c, c, n=i) for i, c in enumerate(["DATA", "NETWORK"] * 2)]
    half = [*balanced, _pair("DATA", "NETWORK", n=8), _pair("NETWORK", "DATA", n=9)]
    assert agreement(always, "category") == 1.0
    with pytest.raises(ValueError, match="undefined"):
        kappa(always)
    assert kappa(balanced) == 1.0
    assert kappa(half) == pytest.approx(1 / 3)


def test_the_report_splits_by_whether_the_thread_was_read_and_by_agreement():
    pairs = [
        _pair("DATA", "DATA", looked_up=False, n=1),
        _pair("DATA", "NETWORK", looked_up=True, n=2),
        _pair("NETWORK", "NETWORK", looked_up=True, n=3),
    ]
    outcomes = {
        "f-001": {"predicted_category": "DATA"},
        "f-002": {"predicted_category": "NETWORK"},
        "f-003": {"predicted_category": "DATA"},
    }
    text = report(pairs, outcomes)
    assert "thread read      2  category 50.0%" in text
    assert "message only     1  category 100.0%" in text
    assert "diagnosis on categories agreed: 1/2 = 50.0%" in text
    assert "diagnosis on categories disagreed: 0/1 = 0.0%" in text


def test_the_shipped_sample_is_read_against_the_corpus(capsys, tmp_path):
    """Every second label names a corpus line; an eval run's outcomes are joined by id."""
    from bunsui_core.diagnosis.training import CORPUS_DIR, load_corpus  # noqa: PLC0415

    right = [{"id": e.id, "predicted_category": e.category} for e in load_corpus(CORPUS_DIR)]
    outcomes = tmp_path / "lofo.json"
    outcomes.write_text(json.dumps({"outcomes": right}))
    assert main(["--outcomes", str(outcomes)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("160 messages labelled twice")
    agreed = next(line for line in text.splitlines() if "categories agreed" in line)
    assert agreed.endswith("= 100.0% (against the first labels)")
