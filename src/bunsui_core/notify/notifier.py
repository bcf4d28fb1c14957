"""The notifier: a background thread in the server following the event feed.

It starts at the feed's current end (a restart does not replay history), turns each event
an approver should hear of into a notice and hands it to the couriers of the targets that
want it. Pending tickets past their deadline are expired on a sweep, so `ticket_expired`
is sent even when nobody looks at the ticket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from bunsui_core.errors import BunsuiError
from bunsui_core.governance import approvals
from bunsui_core.governance.tickets import TicketStatus
from bunsui_core.model.event import Event
from bunsui_core.model.session import utc_now
from bunsui_core.notify.delivery import Courier, Post, post_json
from bunsui_core.notify.notices import Notice, build_notice, notice_kind
from bunsui_core.notify.settings import NoticeKind, NotificationSettings
from bunsui_core.store import Store

logger = logging.getLogger("bunsui.notify")
T = TypeVar("T")

POLL_SECONDS = 0.5
SWEEP_SECONDS = 30.0
"""How often pending tickets are checked against their deadline."""


class Notifier:
    """Feed follower plus one courier per target; `start()` returns at once."""

    def __init__(
        self,
        settings: NotificationSettings,
        open_store: Callable[[], Store],
        *,
        default_base: str | None = None,
        post: Post = post_json,
    ) -> None:
        self.settings = settings
        self.open_store = open_store
        self.link_base = settings.base_url or default_base
        self.couriers = [Courier(t, settings, post) for t in settings.targets]
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bunsui-notifier", daemon=True)

    def start(self) -> None:
        """Follow the feed from its current end; returns once the starting point is known."""
        for courier in self.couriers:
            courier.start()
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        """Stop following and delivering."""
        self._stop.set()
        self._thread.join(5)
        for courier in self.couriers:
            courier.stop()

    def _run(self) -> None:
        store = self.open_store()
        try:
            cursor = self._retrying(store.last_event_seq, default=0)
            self._ready.set()
            next_sweep = time.monotonic()
            while not self._stop.is_set():
                if time.monotonic() >= next_sweep:
                    self._retrying(lambda: self._expire_overdue(store), default=None)
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                read = partial(store.list_events, after_seq=cursor, limit=500)
                events: list[Event] = self._retrying(read, default=[])
                for event in events:
                    cursor = event.seq
                    self.dispatch(store, event)
                self._stop.wait(POLL_SECONDS)
        finally:
            self._ready.set()
            store.close()

    def _retrying(self, read: Callable[[], T], *, default: T) -> T:
        """A store read that fails (locked, unreachable) is logged and retried next round."""
        try:
            return read()
        except BunsuiError as exc:
            logger.warning("notifier: store read failed (%s); retrying", exc.code)
            return default

    def dispatch(self, store: Store, event: Event) -> Notice | None:
        """Queue the event's notice for every target that wants its kind."""
        kind = notice_kind(event)
        wanted = [c for c in self.couriers if kind is not None and kind in c.target.events]
        if kind is None or not wanted:
            return None
        ticket = store.get_ticket(event.id) if str(event.kind) == "ticket" else None
        detail = None
        if kind is NoticeKind.SESSION_ESCALATED:
            session = store.get_session(event.id)
            escalation = getattr(session, "escalation", None)
            if escalation is not None:
                detail = f"by {escalation.escalated_by}: {escalation.reason}"
        notice = build_notice(event, kind, ticket, self.link_base, detail)
        for courier in wanted:
            courier.submit(notice)
        return notice

    def _expire_overdue(self, store: Store) -> None:
        if store.read_only:
            return
        now = utc_now()
        for ticket in store.list_tickets(status=TicketStatus.PENDING, limit=1000):
            if ticket.overdue(now):
                approvals.current_ticket(store, ticket.ticket_id)
