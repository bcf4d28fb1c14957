"""Locations of problems in nested input, printed the way people write paths."""

from __future__ import annotations


def location(loc: tuple[str | int, ...]) -> str:
    """Render a pydantic-style location as `jobs[2].dependencies[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"
