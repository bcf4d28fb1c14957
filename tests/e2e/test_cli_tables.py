"""`--format table` as a person at an 80-column terminal sees it: every line fits, and
nothing a later command needs (ids, hashes, cursors, commands) is cut."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

BUNSUI = str(Path(sys.executable).parent / "bunsui")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ETL = str(EXAMPLES / "nightly_etl" / "pipeline.yaml")


def bunsui(home: Path, *args: str, fmt: str = "json", columns: int = 80) -> Any:
    """The real CLI, its stdout (parsed when json) and exit code checked for a traceback."""
    env = {**os.environ, "BUNSUI_HOME": str(home), "COLUMNS": str(columns)}
    env.pop("BUNSUI_FORMAT", None)
    result = subprocess.run(
        [BUNSUI, *args, "--format", fmt],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 6, 10), (args, result.returncode, result.stderr)
    return json.loads(result.stdout) if fmt == "json" else result.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two failed runs of the ETL example and an agent's pending ticket."""
    path = tmp_path_factory.mktemp("tables") / "home"
    for _ in range(2):
        bunsui(path, "pipeline", "run", ETL, "--wait")
    session_id = bunsui(path, "session", "list")["sessions"][0]["session_id"]
    bunsui(path, "--actor", "ai-agent", "job", "rerun", "transform", "--session-id", session_id)
    return path


def _session(home: Path) -> str:
    return str(bunsui(home, "session", "list")["sessions"][0]["session_id"])


def _commands(home: Path) -> list[list[str]]:
    session_id = _session(home)
    ticket_id = bunsui(home, "approval", "list")["tickets"][0]["ticket_id"]
    plan_id = bunsui(home, "recovery", "suggest", "--session-id", session_id)["recovery_plans"][0][
        "plan_id"
    ]
    return [
        ["session", "list"],
        ["session", "describe", session_id],
        ["pipeline", "list"],
        ["pipeline", "describe", "nightly-orders-etl"],
        ["pipeline", "validate", ETL],
        ["job", "list", "--session-id", session_id],
        ["job", "describe", "transform", "--session-id", session_id],
        ["job", "logs", "transform", "--session-id", session_id],
        ["error", "analyze", "--session-id", session_id],
        ["error", "classify", "--message", "Task timed out after 300.00 seconds"],
        ["error", "resolutions"],
        ["recovery", "suggest", "--session-id", session_id],
        ["recovery", "execute", plan_id],
        ["approval", "list"],
        ["approval", "show", ticket_id],
        ["audit", "list"],
        ["audit", "head"],
        ["audit", "verify"],
        ["policy", "check", "--actor", "ai-agent", "--action", "job:rerun"],
        ["policy", "explain"],
        ["--actor", "ai-agent", "job", "rerun", "transform", "--session-id", session_id],
    ]


def _unwrap_commands(text: str) -> list[str]:
    """The `bunsui ...` lines of a table, continuation lines joined as a shell would."""
    joined = re.sub(r" \\\n\s+", " ", text)
    found = (re.match(r"^\s*(?:\w+: )?(bunsui .*)$", line) for line in joined.splitlines())
    return [match[1].strip() for match in found if match]


class TestTablesFit:
    @pytest.mark.slow
    def test_every_table_fits_80_columns(self, home):
        """No line of any table-producing command is wider than 80 columns."""
        for args in _commands(home):
            for wide in ([], ["--wide"]) if args[-1] == "list" else ([],):
                output = bunsui(home, *args, *wide, fmt="table")
                assert output.strip(), args
                too_wide = [line for line in output.splitlines() if len(line) > 80]
                assert not too_wide, (args, wide, too_wide)
                assert "True" not in output, args
                assert "False" not in output, args

    def test_audit_head_prints_the_full_head(self, home):
        """`audit head` prints SEQ:HASH whole, so `audit verify --expect-head` accepts it."""
        table = bunsui(home, "audit", "head", fmt="table")
        [head] = [line.removeprefix("head: ") for line in table.splitlines() if "head:" in line]
        assert re.fullmatch(r"\d+:[0-9a-f]{64}", head), head
        verified = bunsui(home, "audit", "verify", "--expect-head", head)
        assert verified["ok"] is True

    def test_next_cursor_comes_whole_after_the_rows(self, home):
        """The next page's cursor is printed in full, after the rows."""
        cursor = bunsui(home, "session", "list", "--limit", "1")["next_cursor"]
        table = bunsui(home, "session", "list", "--limit", "1", fmt="table")
        lines = table.splitlines()
        # Beside its label when it fits, else alone on the next line: whole either way.
        assert "next_cursor:" in lines[-2] + lines[-1]
        assert lines[-1].split()[-1] == cursor
        assert any(line.startswith("ses-") for line in lines[:-2])

    def test_error_analyze_prints_every_suggested_command_runnable(self, home):
        """Each suggested command appears, split only into shell continuation lines."""
        session_id = _session(home)
        analysis = bunsui(home, "error", "analyze", "--session-id", session_id)
        expected = {s["command"] for e in analysis["errors"] for s in e["recovery_suggestions"]}
        table = bunsui(home, "error", "analyze", "--session-id", session_id, fmt="table")
        printed = _unwrap_commands(table)
        assert {shlex.join(shlex.split(c)) for c in expected} == {
            shlex.join(shlex.split(c)) for c in printed
        }

    def test_ticket_prints_its_approve_command_and_arguments(self, home):
        """A pending ticket's approve command and arguments are whole."""
        args = ["--actor", "ai-agent", "job", "rerun", "transform", "--session-id", _session(home)]
        ticket = bunsui(home, *args)
        table = bunsui(home, *args, fmt="table")
        assert ticket["approve_command"] in _unwrap_commands(table)
        assert ticket["ticket_id"] in table
        assert ticket["arguments"]["session_id"] in table

    def test_wide_shows_every_column(self, home):
        """`--wide` adds the columns a narrow table leaves out."""
        narrow = bunsui(home, "pipeline", "list", fmt="table")
        wide = bunsui(home, "pipeline", "list", "--wide", fmt="table", columns=200)
        assert "CONTENT_HASH" not in narrow
        assert "CONTENT_HASH" in wide


JAPANESE = "ファイルの読み込みに失敗しました。データ形式が正しくありません 😀 " * 4


def _columns(text: str) -> int:
    """Terminal columns by Unicode's East Asian Width: W and F take two, combining none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def test_wide_characters_fit_80_columns(tmp_path):
    """A job failing in Japanese and emoji: its session, error analysis, logs and a coded
    error naming a Japanese path fit 80 columns counted as a terminal counts them."""
    home = tmp_path / "home"
    pipeline = tmp_path / "pipeline.yaml"
    code = f"import sys; sys.exit('ValueError: ' + {JAPANESE!r})"
    pipeline.write_text(
        json.dumps(
            {
                "name": "wide-text",
                "description": JAPANESE,
                "jobs": [
                    {
                        "job_id": "load",
                        "name": "load",
                        "operations": [
                            {
                                "operation_id": "load-op",
                                "name": "load",
                                "config": {
                                    "operation_type": "command",
                                    "parameters": {"command": [sys.executable, "-c", code]},
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    bunsui(home, "pipeline", "run", str(pipeline), "--wait")
    session_id = _session(home)
    for args in (
        ["session", "list"],
        ["session", "describe", session_id],
        ["pipeline", "describe", "wide-text"],
        ["job", "logs", "load", "--session-id", session_id],
        ["error", "analyze", "--session-id", session_id],
    ):
        output = bunsui(home, *args, fmt="table")
        assert "データ形式" in output or args[0] == "session", args
        too_wide = [line for line in output.splitlines() if _columns(line) > 80]
        assert not too_wide, (args, too_wide)
    missing = subprocess.run(
        [
            BUNSUI,
            "pipeline",
            "validate",
            str(tmp_path / ("パイプライン" * 12)),
            "--format",
            "table",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BUNSUI_HOME": str(home), "COLUMNS": "80"},
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2, missing.stderr
    assert "error PIPELINE_INVALID" in missing.stderr
    assert "パイプライン" in missing.stderr
    assert all(_columns(line) <= 80 for line in missing.stderr.splitlines()), missing.stderr
