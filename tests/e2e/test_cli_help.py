"""Help, usage errors and completion as a person meets them: the installed CLI in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.actions import REGISTRY
from bunsui_core.actions.command_line import parse_command_line
from bunsui_mcp._cli_help import EXAMPLES
from tests.e2e.test_cli import BUNSUI


def bunsui(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "BUNSUI_HOME": str(tmp_path / "home"), "COLUMNS": "80", **(env or {})}
    full.pop("BUNSUI_FORMAT", None)
    return subprocess.run(
        [BUNSUI, *args], capture_output=True, text=True, env=full, timeout=60, check=False
    )


def error_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)["error"]  # type: ignore[no-any-return]


class TestHelp:
    def test_version(self, tmp_path):
        """`--version` prints the installed version; `--help` offers it."""
        result = bunsui(tmp_path, "--version")
        assert result.stdout.strip() == f"bunsui {version('bunsui')}"
        assert "--version" in bunsui(tmp_path, "--help").stdout

    def test_command_help_speaks_cli(self, tmp_path):
        """Metavars, required marks, defaults, choices and examples; no `<str>` or field names."""
        text = bunsui(tmp_path, "session", "rerun", "--help").stdout
        assert "Usage: bunsui session rerun [OPTIONS] SESSION_ID" in text
        assert "--strategy [checkpoint|failed-only|full]" in text
        assert "[default: checkpoint]" in text
        assert "--from-job TEXT" in text
        assert re.search(r"reruns\s+from\s+--from-job", text)
        assert "Examples:\n    bunsui session rerun ses-" in text
        assert "<str>" not in text
        assert "{" not in text
        logs = bunsui(tmp_path, "job", "logs", "--help").stdout
        assert re.search(r"--session-id TEXT\s+Session id \(ses-\.\.\.\)\.\s+\[required\]", logs)
        assert "--tail-lines INTEGER" in logs
        assert "--stream [stdout|stderr]" in logs
        listing = bunsui(tmp_path, "session", "list", "--help").stdout
        assert "--filter KEY=VALUE" in listing
        learn = bunsui(tmp_path, "error", "learn", "--help").stdout
        for shown in (text, logs, listing, learn):
            assert all(len(line) <= 80 for line in shown.splitlines())
        assert learn.count(" \\\n") >= 1  # a long example continues on the next line

    def test_every_command_has_examples_that_parse(self):
        """Each action's help ends with examples, and each example is a valid command line."""
        for action in REGISTRY:
            examples = EXAMPLES[action.name]
            assert 1 <= len(examples) <= 2, action.name
            for example in examples:
                line = example.split(" > ")[0].split(" | ")[-1]
                line = line.replace("bunsui --backend aws ", "bunsui ")
                if "--follow" in line:
                    continue  # a CLI-only flag of `job logs`
                parsed, _ = parse_command_line(line, REGISTRY)
                assert parsed.name == action.name, example

    @pytest.mark.parametrize(
        ("command", "example"),
        [
            (("events", "tail"), "bunsui events tail --follow"),
            (("session", "watch"), "bunsui session watch ses-"),
        ],
    )
    def test_hand_written_commands_show_their_examples_too(self, tmp_path, command, example):
        """The commands written outside the action registry get the same help ending."""
        text = bunsui(tmp_path, *command, "--help").stdout
        assert f"Examples:\n    {example}" in text
        assert all(len(line) <= 80 for line in text.splitlines())


class TestUsage:
    def test_global_options_after_the_command(self, tmp_path):
        """`--format` and `--home` work after the command too; a command's own --actor stays."""
        after = bunsui(tmp_path, "session", "list", "--format", "json", "--home", str(tmp_path))
        assert json.loads(after.stdout) == {"sessions": [], "next_cursor": None}
        audit = bunsui(tmp_path, "audit", "list", "--actor", "nobody", "--format", "json")
        assert json.loads(audit.stdout)["entries"] == []

    @pytest.mark.parametrize(
        ("typed", "suggestion"),
        [
            (["sesion", "list"], "session"),
            (["session", "lst"], "list"),
            (["session", "list", "--limt", "3"], "--limit"),
        ],
    )
    def test_typos_get_did_you_mean(self, tmp_path, typed, suggestion):
        """A mistyped command or option is INVALID_ARGUMENT suggesting the right one."""
        result = bunsui(tmp_path, "--format", "json", *typed)
        assert result.returncode == 2
        error = error_of(result)
        assert error["code"] == "INVALID_ARGUMENT"
        assert "Did you mean" in error["message"]
        assert suggestion in error["message"]

    @pytest.mark.parametrize("bad", ["colour=red", "created_after=yesterday", "created_before=x"])
    def test_bad_filters_are_errors_not_empty_results(self, tmp_path, bad):
        """An unknown filter key or an unparseable date is INVALID_ARGUMENT naming the field."""
        result = bunsui(tmp_path, "--format", "json", "session", "list", "--filter", bad)
        assert result.returncode == 2
        error = error_of(result)
        assert error["code"] == "INVALID_ARGUMENT"
        assert error["details"]["errors"][0]["field"].startswith("filter.")

    def test_shell_completion_knows_commands_and_options(self, tmp_path):
        """Tab completion lists a resource's commands and a command's options."""

        def complete(words: str) -> list[str]:
            env = {
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
                "_BUNSUI_COMPLETE": "complete_bash",
            }
            return bunsui(tmp_path, env=env).stdout.split()

        assert {"list", "describe", "rerun", "rerun-many", "watch"} <= set(
            complete("bunsui session ")
        )
        assert complete("bunsui session rerun --str") == ["--strategy"]
        assert "completion" in bunsui(tmp_path, "--help").stdout
