"""Files shipped with bunsui (policies, prompt templates), found installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

from bunsui_core.errors import NotFoundError

_PACKAGED = Path(__file__).parent / "_data"
_CHECKOUT = Path(__file__).resolve().parents[2]


def shipped_file(relative: str) -> Path:
    """`policies/default.yaml` or `prompts/system.md`: inside the wheel when installed,
    at the repository root when running from a source checkout (editable install)."""
    for root in (_PACKAGED, _CHECKOUT):
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise NotFoundError(
        f"bunsui data file {relative} is missing from this installation", details={"file": relative}
    )
