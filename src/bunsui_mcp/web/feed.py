"""The event feed shared by every open inbox page: one store read per interval, however many
pages listen (each page used to poll the store on its own, so a hundred tabs, or a client
opening connections in a loop, cost a hundred reads every half second)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from bunsui_core.model.event import Event
from bunsui_core.store import Store

RECENT_EVENTS = 1000
"""Events kept for listeners that fall behind; an older cursor just catches up from here."""


class FeedFollower:
    """Reads the store's event feed for all listeners: whichever listener is due polls,
    under a lock, at most once per `interval`; the others wait for what it read."""

    def __init__(
        self, open_store: Callable[[], Store], interval: float, max_listeners: int
    ) -> None:
        self.open_store = open_store
        self.interval = interval
        self.max_listeners = max_listeners
        self.listeners = 0
        self.reads = 0
        """Store reads so far (how many times the feed was polled), for tests and logs."""
        self._store: Store | None = None
        self._cursor: int | None = None
        self._since = 0
        """Every event after this position is in `_recent`."""
        self._recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._polled_at = float("-inf")
        self._lock = anyio.Lock()
        self._arrived = anyio.Event()

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[FeedFollower]:
        """Count a listener while it listens; the store closes when the last one leaves.
        Raises OverflowError when `max_listeners` are listening already."""
        if self.listeners >= self.max_listeners:
            raise OverflowError(self.max_listeners)
        self.listeners += 1
        try:
            yield self
        finally:
            self.listeners -= 1
            if self.listeners == 0:
                with anyio.CancelScope(shield=True):  # a client hanging up cancels us
                    await self._close()

    async def head(self) -> int:
        """The newest feed position known: a new listener starts after it."""
        await self._poll_if_due()
        return self._cursor or 0

    async def after(self, cursor: int) -> list[Event]:
        """The events after `cursor`, waiting up to one interval for new ones. A cursor
        older than what is kept (a page back after a long while) is read from the store."""
        waited = self._arrived
        await self._poll_if_due()
        if cursor < self._since and self._store is not None:
            store, behind = self._store, cursor
            missed = await anyio.to_thread.run_sync(
                lambda: store.list_events(after_seq=behind, limit=RECENT_EVENTS)
            )
            if missed:
                return missed
            cursor = self._since
        fresh = [e for e in self._recent if e.seq > cursor]
        if not fresh:
            with anyio.move_on_after(self.interval):
                await waited.wait()
            fresh = [e for e in self._recent if e.seq > cursor]
        return fresh

    async def _poll_if_due(self) -> None:
        """Read the feed unless someone did within the interval; wakes every listener."""
        async with self._lock:
            if anyio.current_time() - self._polled_at < self.interval:
                return
            if self._store is None:
                self._store = await anyio.to_thread.run_sync(self.open_store)
            store = self._store
            if self._cursor is None:
                self._cursor = self._since = await anyio.to_thread.run_sync(store.last_event_seq)
            cursor = self._cursor
            events = await anyio.to_thread.run_sync(
                lambda: store.list_events(after_seq=cursor, limit=500)
            )
            self.reads += 1
            self._polled_at = anyio.current_time()
            if not events:
                return
            self._recent.extend(events)
            self._cursor = events[-1].seq
            if len(self._recent) == self._recent.maxlen:
                self._since = self._recent[0].seq - 1
            arrived, self._arrived = self._arrived, anyio.Event()
            arrived.set()

    async def _close(self) -> None:
        async with self._lock:
            if self._store is not None and self.listeners == 0:
                store, self._store = self._store, None
                self._cursor = None
                self._since = 0
                self._recent.clear()
                self._polled_at = float("-inf")
                await anyio.to_thread.run_sync(store.close)
