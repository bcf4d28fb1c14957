"""Previews: what an action would do, computed by the code that does it, bound by a ticket.

A ticket stores the preview its request produced and the preview's hash; executing the
ticket computes the preview again and refuses (CONFLICT) when anything differs, so a human
approves exactly what runs (Terraform's saved plan is the model).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.governance.canonical import canonical_text, sha256_text


class Preview(BaseModel):
    """The effect of one call, as data a human reads before approving it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    summary: str = Field(description="One line naming the action, its target and the change.")
    effect: dict[str, Any] = Field(
        description="Everything the call would do: effective config before -> after, jobs "
        "to run and skip with their argv/memory/timeout, the target pipeline and version."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="sha256 of every file the effect depends on (the pipeline file and the "
        "scripts its commands name), by absolute path.",
    )

    @property
    def digest(self) -> str:
        """sha256 of the canonical preview: what a ticket binds."""
        return sha256_text(canonical_text(self.model_dump(mode="json")))


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two previews' effects differ (for a CONFLICT's details)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths: list[str] = []
        for key in sorted(before.keys() | after.keys(), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            paths.extend(changed_paths(before.get(key), after.get(key), where))
        return paths
    return [] if before == after else [prefix or "(root)"]
