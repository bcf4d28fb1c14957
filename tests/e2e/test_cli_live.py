"""Live output: progress and log lines for a person at a terminal, nothing extra for scripts."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from bunsui_mcp._cli_live import RunProgress, new_lines
from tests.conftest import command_job, pipeline_data
from tests.e2e.test_cli import BUNSUI

PRINTER = "import time\nfor i in range(6):\n    print('line', i, flush=True)\n    time.sleep(0.4)"


def _pipeline(tmp_path: Path) -> str:
    path = tmp_path / "printer.yaml"
    path.write_text(yaml.safe_dump(pipeline_data(command_job("printer", PRINTER), name="printer")))
    return str(path)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "BUNSUI_HOME": str(tmp_path / "home"), "COLUMNS": "80"}
    env.pop("BUNSUI_FORMAT", None)
    return env


def _start(tmp_path: Path, env: dict[str, str]) -> str:
    """Start the printer pipeline in the background; its session id."""
    started = subprocess.run(
        [BUNSUI, "--format", "json", "pipeline", "run", _pipeline(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return str(json.loads(started.stdout)["session_id"])


def _run_on_terminal(argv: list[str], env: dict[str, str], timeout: float = 60) -> str:
    """Run with stdout and stderr on a pseudo-terminal; everything it showed there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=5)
    os.close(leader)
    return shown.decode(errors="replace")


class TestNewLines:
    def test_a_moving_tail_yields_only_unseen_lines(self):
        """Lines seen in the previous tail are not printed again when the tail moves on."""
        assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
        assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
        assert new_lines([], ["x"]) == ["x"]
        assert new_lines(["a"], ["a"]) == []


@pytest.mark.slow
class TestRunProgress:
    def test_jobs_stopped_by_ctrl_c_count_as_cancelled_not_failed(self):
        """The live line's counts come from the engine's own messages; after Ctrl-C the
        stopped jobs are cancelled, which a person must not read as failures."""
        progress = RunProgress()
        for message in (
            "job a: running",
            "job b: running",
            "job c: running",
            "job c: failed",
            "job a: cancelled",
            "job b: cancelled",
        ):
            progress(message)
        line = progress.summary()
        assert line.startswith("0 done · 0 running · 1 failed · 2 cancelled · "), line

    def test_no_cancelled_count_while_nothing_was_stopped(self):
        progress = RunProgress()
        progress("job a: running")
        progress("job b: completed")
        assert progress.summary().startswith("1 done · 1 running · 0 failed · 00:"), (
            progress.summary()
        )


class TestLiveOutput:
    def test_follow_prints_every_line_once_until_the_job_ends(self, tmp_path):
        """`job logs --follow` streams a running job's output and returns when it ends."""
        env = _env(tmp_path)
        session_id = _start(tmp_path, env)
        followed = subprocess.run(
            [BUNSUI, "job", "logs", "printer", "--session-id", session_id, "--follow"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert followed.returncode == 0, followed.stderr
        assert followed.stdout.splitlines() == [f"printer-op stdout | line {i}" for i in range(6)]

    def test_wait_shows_progress_on_a_terminal_only(self, tmp_path):
        """On a terminal `run --wait` shows job progress; piped, stdout is only the JSON."""
        env = _env(tmp_path)
        argv = [BUNSUI, "pipeline", "run", _pipeline(tmp_path), "--wait"]
        shown = _run_on_terminal(argv, env)
        assert "job printer: running" in shown
        assert "job printer: completed" in shown
        assert "status: completed" in shown  # the table format, chosen for a terminal
        piped = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        assert json.loads(piped.stdout)["status"] == "completed"
        assert piped.stderr == ""

    def test_watch_on_a_terminal_ends_with_the_final_status(self, tmp_path):
        """`session watch` redraws the jobs while it runs and ends with the session."""
        env = _env(tmp_path)
        session_id = _start(tmp_path, env)
        shown = _run_on_terminal([BUNSUI, "session", "watch", session_id], env)
        assert "DURATION" in shown  # the live view's header; the final table has none
        assert f"session_id: {session_id}" in shown
        assert "status: completed" in shown
