"""The README's MCP tool table lists every action, so the docs cannot drift from the registry."""

from __future__ import annotations

from pathlib import Path

from bunsui_core.actions import REGISTRY

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_tool_is_in_the_readme_table():
    """Adding an action without documenting its tool fails here."""
    missing = [a.tool_name for a in REGISTRY if f"| `{a.tool_name}` |" not in README]
    assert missing == []
