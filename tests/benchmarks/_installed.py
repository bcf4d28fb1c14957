"""What the benchmark scripts share: the installed `bunsui` they time, and the error a run
that did not do its work raises (its timing would be meaningless)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


class BenchError(RuntimeError):
    """A run did not do what it was measured for; its timing would be meaningless."""


def bunsui_executable() -> str:
    """The `bunsui` script installed next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "bunsui"
    found = str(beside) if beside.exists() else shutil.which("bunsui")
    if found is None:
        raise BenchError("bunsui is not installed next to this interpreter nor on PATH")
    return found
