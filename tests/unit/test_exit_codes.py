"""Every error code has a stable exit code, and the README documents both."""

from __future__ import annotations

from pathlib import Path

from bunsui_core.errors import ErrorCode
from bunsui_mcp.cli import EXIT_CODES

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_error_code_has_an_exit_code():
    """Scripts branch on exit codes: no error code may fall through to a default."""
    assert set(EXIT_CODES) == set(ErrorCode)


def test_readme_lists_every_error_code_with_its_exit_code():
    """The README's table row for each exit code names every error code mapped to it."""
    rows = {
        line.split("|")[1].strip(): line for line in README.splitlines() if line.startswith("| ")
    }
    for code, exit_code in EXIT_CODES.items():
        assert f"`{code}`" in rows[str(exit_code)], code
