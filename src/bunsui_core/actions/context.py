"""What a handler may use: settings, the caller's identity, the store, a progress channel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bunsui_core.config import Settings
from bunsui_core.store import Store, open_store

ActorId = str
"""Who is calling: an OS user, an MCP connection's actor, a token's subject."""

ProgressCallback = Callable[[str], None]
Invoke = Callable[[str, dict[str, Any]], BaseModel]
"""Call another action through the gateway as the same actor (recovery plan steps)."""


def _ignore_progress(_message: str) -> None:
    """Default progress sink for callers that show none."""


@dataclass
class ActionContext:
    """Per-call context; the store opens on first use, so pure actions never touch the disk."""

    settings: Settings
    actor: ActorId
    progress: ProgressCallback = _ignore_progress
    invoke: Invoke | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        """The configured store, opened lazily."""
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    def close(self) -> None:
        """Release the store if this context opened it."""
        if self._store is not None:
            self._store.close()
            self._store = None
