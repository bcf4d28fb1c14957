"""Persistence: the Store protocol and its backends."""

from __future__ import annotations

from bunsui_core.config import Settings
from bunsui_core.store.base import (
    PipelineVersion,
    SessionFilter,
    SessionPage,
    Store,
    update_session,
)


def open_store(settings: Settings) -> Store:
    """The store for these settings: the embedded SQLite file under the bunsui home."""
    from bunsui_core.store.sqlite import SqliteStore  # noqa: PLC0415 - backends load on demand

    return SqliteStore(settings.database_path, read_only=settings.read_only)


__all__ = [
    "PipelineVersion",
    "SessionFilter",
    "SessionPage",
    "Store",
    "open_store",
    "update_session",
]
