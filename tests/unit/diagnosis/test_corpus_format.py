"""The error corpus stays well-formed, so training and evaluation can trust every line."""

import json
import re
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "errors"
HOLDOUT = CORPUS.with_name("errors-holdout")
"""Families nobody working on diagnosis has read, kept out of training and evaluation until
they have been measured (`make eval EVAL_ARGS="--holdout tests/data/errors-holdout"`)."""
CATEGORIES = {
    "RESOURCE",
    "NETWORK",
    "PERMISSION",
    "APPLICATION",
    "TIMEOUT",
    "THROTTLING",
    "DATA",
    "CONFIGURATION",
    "DEPENDENCY",
}
ACTIONS = {
    "retry",
    "retry_with_backoff",
    "increase_memory",
    "increase_timeout",
    "retry_with_smaller_batch",
    "fix_permissions",
    "fix_configuration",
    "fix_code_or_data",
    "escalate",
}
REQUIRED = {"id", "family", "source_url", "message", "category", "first_action", "transient"}
OPTIONAL = {"note"}


def _records() -> list[tuple[str, int, dict[str, object]]]:
    """Every corpus line as (file name, line number, parsed object)."""
    found = []
    for path in sorted([*CORPUS.glob("*.jsonl"), *HOLDOUT.glob("*.jsonl")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert line.strip(), f"{path.name}:{number} is blank"
            record = json.loads(line)
            assert isinstance(record, dict), f"{path.name}:{number} is not an object"
            found.append((path.name, number, record))
    return found


def test_corpus_has_lines() -> None:
    assert len(_records()) >= 100


def test_every_line_has_valid_fields() -> None:
    for name, number, record in _records():
        where = f"{name}:{number}"
        assert record.keys() >= REQUIRED, f"{where} misses {REQUIRED - record.keys()}"
        assert record.keys() <= REQUIRED | OPTIONAL, (
            f"{where} has {record.keys() - REQUIRED - OPTIONAL}"
        )
        assert record["family"] == name.removesuffix(".jsonl"), where
        assert re.fullmatch(rf"{re.escape(str(record['family']))}-\d{{3}}", str(record["id"])), (
            where
        )
        assert re.fullmatch(r"https://\S+", str(record["source_url"])), where
        assert isinstance(record["message"], str), where
        assert record["message"].strip(), where
        assert record["category"] in CATEGORIES, where
        assert record["first_action"] in ACTIONS, where
        assert isinstance(record["transient"], bool), where
        if "note" in record:
            assert isinstance(record["note"], str), where
            assert record["note"].strip(), where


def test_ids_are_unique() -> None:
    ids = [record["id"] for _, _, record in _records()]
    assert len(ids) == len(set(ids))


def test_no_family_is_both_trained_on_and_held_out() -> None:
    corpus = {path.stem for path in CORPUS.glob("*.jsonl")}
    assert not corpus & {path.stem for path in HOLDOUT.glob("*.jsonl")}


def test_second_labels_name_corpus_lines_in_the_vocabulary() -> None:
    """The agreement sample (`python -m tests.eval.agreement`) relabels training lines, once
    each, with the corpus's own categories and actions."""
    ids = {record["id"] for name, _, record in _records() if (CORPUS / name).exists()}
    path = CORPUS / "agreement" / "second-labels.jsonl"
    seen = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        record = json.loads(line)
        where = f"{path.name}:{number}"
        assert record["id"] in ids, where
        assert record["id"] not in seen, where
        seen.add(record["id"])
        assert record["category"] in CATEGORIES, where
        assert record["first_action"] in ACTIONS, where
        assert isinstance(record["transient"], bool), where
        assert isinstance(record["looked_up"], bool), where
