"""`make eval`: diagnosis accuracy on held-out families, per layer and in total, with calibration.

Leave-one-family-out: for each family (a service or library) of tests/data/errors, the text
model is retrained (with its calibration and threshold) on the other families only, and the
rule layers' confidences are their precision on those other families; the held-out family is
then classified. A message answered UNKNOWN counts as wrong for category and first action.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits

from bunsui_core.diagnosis.classifier import Classification, classify
from bunsui_core.diagnosis.model import TextModel
from bunsui_core.diagnosis.training import CORPUS_DIR, Example, FeatureSpace, load_corpus, train
from bunsui_core.diagnosis.vocabulary import Category, Layer

BINS = 10
NEVER_TRANSIENT = {Category.DEPENDENCY.value, Category.PERMISSION.value}


@dataclass(frozen=True)
class Outcome:
    """One held-out message and what diagnosis said."""

    id: str
    family: str
    category: str
    first_action: str
    predicted_category: str
    predicted_action: str
    layer: str
    confidence: float
    calibrated_category: str
    transient: bool


def _outcome(example: Example, result: Classification) -> Outcome:
    hypothesis = result.hypothesis
    calibrated = (
        hypothesis.category.value
        if result.category is Category.UNKNOWN and hypothesis
        else result.category.value
    )
    return Outcome(
        id=example.id,
        family=example.family,
        category=example.category,
        first_action=example.first_action,
        predicted_category=result.category.value,
        predicted_action=result.priors[0].action.value,
        layer=result.layer.value,
        confidence=result.confidence,
        calibrated_category=calibrated,
        transient=result.transient,
    )


def training_examples(examples: list[Example], held_family: str) -> list[Example]:
    """The other families' messages, less any copy of a held-out message (the same text is
    sometimes quoted under two services, and the model would otherwise have seen it)."""
    held = {e.message.strip() for e in examples if e.family == held_family}
    return [e for e in examples if e.family != held_family and e.message.strip() not in held]


def leave_one_family_out(examples: list[Example], *, use_model: bool = True) -> list[Outcome]:
    """Every message classified by layers that never saw its family.

    Each family's fold retrains the model, so the folds run on every CPU (one BLAS thread
    each, or the processes would fight over the cores); outcomes keep the families' order."""
    families = sorted({e.family for e in examples})
    if not use_model:
        return [o for family in families for o in _fold(examples, None, family)]
    space = FeatureSpace.of(examples)
    # The CPUs this process may run on, not the host's: a CI container on a large host would
    # otherwise start a worker (~230 MB each) per host core. (Only Linux can say; elsewhere,
    # every core.)
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_start_worker, initargs=(examples, space)
    ) as pool:
        return [o for outcomes in pool.map(_worker_fold, families) for o in outcomes]


_WORKER_INPUT: dict[str, tuple[list[Example], FeatureSpace]] = {}


def _start_worker(examples: list[Example], space: FeatureSpace) -> None:
    threadpool_limits(1)
    _WORKER_INPUT["corpus"] = (examples, space)


def _worker_fold(family: str) -> list[Outcome]:
    examples, space = _WORKER_INPUT["corpus"]
    return _fold(examples, space, family)


def _fold(examples: list[Example], space: FeatureSpace | None, family: str) -> list[Outcome]:
    """One family's messages, classified with a model (if `space`) trained without them."""
    model: TextModel | None = None
    if space is not None:
        model = train(training_examples(examples, family), space=space)
    return [
        _outcome(e, classify(e.message, use_model=space is not None, model=model))
        for e in examples
        if e.family == family
    ]


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 3) if total else 0.0


def summarize(outcomes: list[Outcome]) -> dict[str, object]:
    """Accuracy per layer and in total, UNKNOWN rate, transient slips, confusion, calibration."""
    total = len(outcomes)
    layers: dict[str, dict[str, float]] = {}
    for layer in [*(layer.value for layer in Layer)]:
        decided = [o for o in outcomes if o.layer == layer]
        if decided:
            layers[layer] = {
                "decided": len(decided),
                "share": _rate(len(decided), total),
                "category_accuracy": _rate(
                    sum(o.predicted_category == o.category for o in decided), len(decided)
                ),
                "first_action_accuracy": _rate(
                    sum(o.predicted_action == o.first_action for o in decided), len(decided)
                ),
            }
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        confusion[o.category][o.predicted_category] += 1
    return {
        "messages": total,
        "families": len({o.family for o in outcomes}),
        "category_accuracy": _rate(
            sum(o.predicted_category == o.category for o in outcomes), total
        ),
        "first_action_accuracy": _rate(
            sum(o.predicted_action == o.first_action for o in outcomes), total
        ),
        "unknown_rate": _rate(sum(o.predicted_category == "UNKNOWN" for o in outcomes), total),
        "transient_for_missing_or_permission": sum(
            o.transient for o in outcomes if o.category in NEVER_TRANSIENT
        ),
        "layers": layers,
        "confusion": {truth: dict(row) for truth, row in sorted(confusion.items())},
        **calibration(outcomes),
    }


def calibration(outcomes: list[Outcome]) -> dict[str, object]:
    """Expected calibration error of the category confidence, and its reliability table.

    For UNKNOWN answers the confidence is the model's hypothesis probability and the
    hypothesis is what is checked, so every message counts."""
    bins: list[list[Outcome]] = [[] for _ in range(BINS)]
    for o in outcomes:
        bins[min(int(o.confidence * BINS), BINS - 1)].append(o)
    table = []
    ece = 0.0
    for index, members in enumerate(bins):
        if not members:
            continue
        confidence = sum(o.confidence for o in members) / len(members)
        accuracy = sum(o.calibrated_category == o.category for o in members) / len(members)
        ece += len(members) / len(outcomes) * abs(confidence - accuracy)
        table.append(
            {
                "bin": f"{index / BINS:.1f}-{(index + 1) / BINS:.1f}",
                "n": len(members),
                "mean_confidence": round(confidence, 3),
                "accuracy": round(accuracy, 3),
            }
        )
    return {"ece": round(ece, 3), "reliability": table}


def render(summary: dict[str, object], how: str = "leave-one-family-out") -> str:
    """The report as text tables."""
    lines = [
        f"Held-out evaluation: {summary['messages']} messages, {summary['families']} families "
        f"({how})",
        "",
        f"{'layer':<18}{'decided':>8}{'share':>8}{'category':>10}{'action':>8}",
    ]
    layers = summary["layers"]
    assert isinstance(layers, dict)
    for layer, row in layers.items():
        lines.append(
            f"{layer:<18}{row['decided']:>8}{row['share']:>8.1%}"
            f"{row['category_accuracy']:>10.1%}{row['first_action_accuracy']:>8.1%}"
        )
    lines += [
        f"{'total':<18}{summary['messages']:>8}{1:>8.0%}"
        f"{summary['category_accuracy']:>10.1%}{summary['first_action_accuracy']:>8.1%}",
        "",
        f"UNKNOWN: {summary['unknown_rate']:.1%}   transient verdicts for missing "
        f"module/file/permission: {summary['transient_for_missing_or_permission']}   "
        f"ECE: {summary['ece']}",
        "",
        "Reliability (category confidence):",
        f"{'bin':<10}{'n':>5}{'confidence':>12}{'accuracy':>10}",
    ]
    reliability = summary["reliability"]
    assert isinstance(reliability, list)
    for row in reliability:
        lines.append(
            f"{row['bin']:<10}{row['n']:>5}{row['mean_confidence']:>12.3f}{row['accuracy']:>10.3f}"
        )
    confusion = summary["confusion"]
    assert isinstance(confusion, dict)
    columns = sorted({c for row in confusion.values() for c in row})
    lines += ["", "Confusion (rows: labelled category, columns: answered):"]
    lines.append(f"{'':<14}" + "".join(f"{c[:6]:>7}" for c in columns))
    for truth, row in confusion.items():
        lines.append(f"{truth[:13]:<14}" + "".join(f"{row.get(c, 0):>7}" for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print it (or write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--rules-only", action="store_true", help="skip the learned model")
    parser.add_argument("--json", type=Path, help="also write the summary and outcomes here")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="FAMILY,...",
        help="then the same report for these families alone (repeatable)",
    )
    parser.add_argument(
        "--holdout",
        type=Path,
        help="instead, classify this directory's families (none of them in the corpus) with "
        "one model trained on the whole corpus: the shipped code on errors nobody here has read",
    )
    args = parser.parse_args(argv)
    examples = load_corpus(args.corpus)
    if args.holdout:
        return _holdout(examples, load_corpus(args.holdout), parser, args)
    subsets = [set(also.split(",")) for also in args.also]
    if unknown := set().union(*subsets) - {example.family for example in examples}:
        parser.error(f"no such family in the corpus: {', '.join(sorted(unknown))}")
    outcomes = leave_one_family_out(examples, use_model=not args.rules_only)
    summary = summarize(outcomes)
    print(render(summary))
    for also, chosen in zip(args.also, subsets, strict=True):
        print(f"\nThe families {also} alone:")
        print(render(summarize([o for o in outcomes if o.family in chosen])))
    if args.json:
        args.json.write_text(
            json.dumps({"summary": summary, "outcomes": [asdict(o) for o in outcomes]}, indent=1)
        )
    return 0


def _holdout(
    examples: list[Example],
    held: list[Example],
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
) -> int:
    if not held:
        parser.error(f"no labelled messages (<family>.jsonl) in {args.holdout}")
    if shared := {e.family for e in held} & {e.family for e in examples}:
        parser.error(f"held-out families also in the corpus: {', '.join(sorted(shared))}")
    model = None if args.rules_only else train(examples)
    outcomes = [
        _outcome(e, classify(e.message, use_model=not args.rules_only, model=model)) for e in held
    ]
    print(render(summarize(outcomes), how="one model trained on the whole corpus"))
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
