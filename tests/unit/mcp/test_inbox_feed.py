"""The inbox's live feed: every open page is served by one reader of the store's events."""

from __future__ import annotations

import anyio
import pytest

from bunsui_core.actions import Gateway
from bunsui_mcp.web.feed import FeedFollower
from tests.conftest import command_job, pipeline_data, queue_session

INTERVAL = 0.1
LISTENERS = 40


class TestFeedFollower:
    def test_many_pages_cost_one_read_per_interval_and_all_see_the_change(self, settings, store):
        """Forty listeners over ten intervals read the store about ten times, not four
        hundred, and every one of them receives the new session's event."""
        follower = FeedFollower(Gateway(settings).open_store, INTERVAL, max_listeners=100)
        received: list[list[str]] = []

        async def listen() -> None:
            async with follower.listening() as feed:
                cursor = await feed.head()
                seen: list[str] = []
                with anyio.move_on_after(INTERVAL * 10):
                    while True:
                        for event in await feed.after(cursor):
                            cursor = event.seq
                            seen.append(event.id)
                received.append(seen)

        async def main() -> str:
            async with anyio.create_task_group() as tasks:
                for _ in range(LISTENERS):
                    tasks.start_soon(listen)
                await anyio.sleep(INTERVAL * 3)
                session = await anyio.to_thread.run_sync(
                    queue_session, store, pipeline_data(command_job("a", "pass"))
                )
            return session.session_id

        session_id = anyio.run(main)
        assert len(received) == LISTENERS
        assert all(seen == [session_id] for seen in received), received
        assert follower.reads <= 14  # ten intervals, plus the first read and scheduling slack
        assert follower.listeners == 0

    def test_a_cursor_older_than_the_kept_events_is_read_from_the_store(self, settings, store):
        """A page coming back with an old Last-Event-ID still gets what it missed."""
        first = queue_session(store, pipeline_data(command_job("a", "pass")))
        follower = FeedFollower(Gateway(settings).open_store, INTERVAL, max_listeners=1)

        async def main() -> list[str]:
            async with follower.listening() as feed:
                await feed.head()
                return [event.id for event in await feed.after(0)]

        assert anyio.run(main) == [first.session_id]

    def test_listeners_beyond_the_limit_are_refused(self, settings):
        """The limit bounds how many sockets live pages may hold."""
        follower = FeedFollower(Gateway(settings).open_store, INTERVAL, max_listeners=1)

        async def main() -> None:
            async with follower.listening():
                with pytest.raises(OverflowError):
                    async with follower.listening():
                        pass

        anyio.run(main)
        assert follower.listeners == 0
