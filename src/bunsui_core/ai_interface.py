"""The Python API an agent embeds: the same actions, governance and event feed as MCP and
the CLI, as one actor (the design's AIInterface)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio

from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.model.event import Event


class AIInterface:
    """Calls go through the gateway as `actor`: policy, tickets and audit apply as usual."""

    def __init__(self, settings: Settings | None = None, actor: str = "ai-agent") -> None:
        self.gateway = Gateway(settings or Settings.resolve())
        self.actor = actor

    def call(self, action: str, **arguments: Any) -> dict[str, Any]:
        """Run an action (`session:list`, `error:analyze`, ...) and return its result as
        JSON-ready data; an approval-required call returns the pending ticket."""
        return self.gateway.invoke(self.actor, action, arguments).model_dump(mode="json")

    async def monitor_pipelines(
        self, *, after_seq: int | None = None, poll_interval: float = 1.0
    ) -> AsyncIterator[Event]:
        """Yield session and ticket status changes as they are committed, forever.

        Starts after `after_seq` (an `Event.seq` seen earlier, to resume without gaps) or,
        by default, with what happens from now on.
        """
        if after_seq is None:  # the newest event so far: only later ones are yielded
            after_seq = (await self._page(None, 1))["next_after_seq"]
        while True:
            page = await self._page(after_seq, 200)
            for data in page["events"]:
                yield Event.model_validate(data)
            after_seq = page["next_after_seq"]
            if not page["events"]:
                await anyio.sleep(poll_interval)

    async def _page(self, after_seq: int | None, limit: int) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(
            partial(self.call, "events:tail", after_seq=after_seq, limit=limit)
        )
