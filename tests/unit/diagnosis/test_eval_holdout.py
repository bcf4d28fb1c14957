"""`make eval EVAL_ARGS="--holdout DIR"`: a set nobody here has read, measured as shipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bunsui_core.diagnosis.training import CORPUS_DIR
from tests.eval.diagnosis import main


def _write(directory: Path, family: str, rows: list[tuple[str, str, str]]) -> None:
    directory.mkdir(exist_ok=True)
    lines = [
        json.dumps(
            {
                "id": f"{family}-{number:03d}",
                "family": family,
                "source_url": "https://example.org/thread",
                "message": message,
                "category": category,
                "first_action": action,
                "transient": False,
            }
        )
        for number, (message, category, action) in enumerate(rows, 1)
    ]
    (directory / f"{family}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_holdout_is_reported_alone(tmp_path, capsys):
    """Only the held-out messages are classified and counted, each against its own label."""
    _write(
        tmp_path / "held",
        "newfamily",
        [
            ("ModuleNotFoundError: No module named 'yaml'", "DEPENDENCY", "fix_configuration"),
            ("ModuleNotFoundError: No module named 'toml'", "NETWORK", "retry"),
        ],
    )
    assert main(["--rules-only", "--holdout", str(tmp_path / "held")]) == 0
    report = capsys.readouterr().out
    assert "2 messages, 1 families (one model trained on the whole corpus)" in report
    assert "total                    2    100%     50.0%   50.0%" in report


def test_a_holdout_family_already_in_the_corpus_is_refused(tmp_path):
    """A family the model trains on would not be held out: the run stops before measuring."""
    family = sorted(CORPUS_DIR.glob("*.jsonl"))[0].stem
    _write(tmp_path / "held", family, [("some error", "DATA", "fix_code_or_data")])
    with pytest.raises(SystemExit):
        main(["--rules-only", "--holdout", str(tmp_path / "held")])


def test_a_holdout_with_no_messages_is_refused(tmp_path, capsys):
    """A mistyped directory is an error, not a report on zero messages."""
    with pytest.raises(SystemExit):
        main(["--rules-only", "--holdout", str(tmp_path / "no-such-dir")])
    assert "no labelled messages" in capsys.readouterr().err
