"""How often a second labeller gives a corpus message the same labels as its first one.

`python -m tests.eval.agreement [--outcomes lofo.json]`. A random sample of the corpus was
relabelled under the same README by people who never saw the first labels
(`tests/data/errors/agreement/second-labels.jsonl`): their agreement is the most any
classifier of these labels can be expected to reach. With the outcomes of a `make eval`
run (`--json`), it also prints diagnosis accuracy on the messages both labellers agree on
and on the others.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bunsui_core.diagnosis.training import CORPUS_DIR, Example, load_corpus

SECOND_LABELS = CORPUS_DIR / "agreement" / "second-labels.jsonl"
LABELS = ("category", "first_action", "transient")


@dataclass(frozen=True)
class SecondLabel:
    """A second labeller's answer for one corpus message."""

    id: str
    category: str
    first_action: str
    transient: bool
    looked_up: bool
    """Whether they read the message's source thread (the rules let its found cause decide)."""


def load_second_labels(path: Path = SECOND_LABELS) -> list[SecondLabel]:
    """The second labels, in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [
        SecondLabel(r["id"], r["category"], r["first_action"], bool(r["transient"]), r["looked_up"])
        for r in rows
    ]


def agreement(pairs: list[tuple[Example, SecondLabel]], label: str) -> float:
    """Share of messages both labellers gave the same `label`."""
    return sum(getattr(e, label) == getattr(s, label) for e, s in pairs) / len(pairs)


def kappa(pairs: list[tuple[Example, SecondLabel]]) -> float:
    """Cohen's kappa of the categories: agreement beyond what the two labellers' category
    frequencies give by chance."""
    observed = agreement(pairs, "category")
    first = Counter(e.category for e, _ in pairs)
    second = Counter(s.category for _, s in pairs)
    chance = sum(first[c] * second[c] for c in first) / len(pairs) ** 2
    if chance == 1:
        raise ValueError("kappa is undefined: both labellers gave every message one category")
    return (observed - chance) / (1 - chance)


def report(pairs: list[tuple[Example, SecondLabel]], outcomes: dict[str, dict[str, str]]) -> str:
    """Agreement overall and by whether the thread was read; with outcomes, diagnosis on the
    categories the labellers agree on and on the disputed ones."""
    lines = [f"{len(pairs)} messages labelled twice"]
    groups = {
        "all": pairs,
        "thread read": [p for p in pairs if p[1].looked_up],
        "message only": [p for p in pairs if not p[1].looked_up],
    }
    for name, group in groups.items():
        if group:
            rates = "  ".join(f"{label} {agreement(group, label):.1%}" for label in LABELS)
            lines.append(f"{name:13s} {len(group):4d}  {rates}")
    lines.append(f"category kappa {kappa(pairs):.3f}")
    if outcomes:
        for name, agreed in (("agreed", True), ("disagreed", False)):
            group = [p for p in pairs if (p[0].category == p[1].category) is agreed]
            if group:
                right = sum(outcomes[e.id]["predicted_category"] == e.category for e, _ in group)
                lines.append(
                    f"diagnosis on categories {name}: {right}/{len(group)} = "
                    f"{right / len(group):.1%} (against the first labels)"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", type=Path, help="a `make eval` --json file")
    args = parser.parse_args(argv)
    corpus = {e.id: e for e in load_corpus(CORPUS_DIR)}
    pairs = [(corpus[s.id], s) for s in load_second_labels()]
    outcomes = (
        {o["id"]: o for o in json.loads(args.outcomes.read_text())["outcomes"]}
        if args.outcomes
        else {}
    )
    print(report(pairs, outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
