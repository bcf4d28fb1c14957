"""`bunsui ... | head`: a reader that goes away ends the CLI quietly with a documented code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BUNSUI = str(Path(sys.executable).parent / "bunsui")


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "json", "policy", "explain"],  # an answer
        ["--format", "json", "session", "describe", "ses-000000000000"],  # an error (NOT_FOUND)
    ],
)
def test_a_closed_stdout_is_exit_141_without_a_traceback(tmp_path: Path, argv: list[str]) -> None:
    """The reader closes the pipe before the CLI writes (as `head` does once it has its
    lines): no BrokenPipeError traceback on stderr, exit 141 (128 + SIGPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read what the CLI prints
    try:
        done = subprocess.run(
            [BUNSUI, *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "BUNSUI_HOME": str(tmp_path / "home")},
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.returncode == 141
