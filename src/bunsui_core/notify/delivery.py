"""Delivery: POST a notice to a webhook, and a courier thread per target that retries.

Nothing here runs on the path of the action that caused a notice: the server's notifier
follows the event feed after the fact and hands notices to couriers through bounded queues,
so a slow, failing or hanging receiver delays only its own later messages. URLs are secrets
(Slack puts the credential in the path): logs and errors name only scheme and host.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from bunsui_core.notify.notices import Notice
from bunsui_core.notify.settings import NotificationSettings, WebhookTarget, host_of

logger = logging.getLogger("bunsui.notify")

QUEUE_LIMIT = 1000
"""Notices waiting per target; beyond it new ones are dropped (and logged), never blocked on."""


class DeliveryError(Exception):
    """A request that did not reach the receiver or was not accepted by it."""


@dataclass(frozen=True)
class Delivery:
    """How sending one notice to one target ended."""

    target: str
    host: str
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


Post = Callable[[str, dict[str, object], float], int]
"""POST a JSON body to a URL within a timeout; returns the HTTP status or raises
DeliveryError."""


def post_json(url: str, body: dict[str, object], timeout: float) -> int:
    """POST `body` as JSON; the status for any HTTP answer, DeliveryError when none came."""
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked to be http(s)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "bunsui-notify"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError) as exc:
        # The exception's text can carry the URL; only its type leaves this function.
        raise DeliveryError(type(getattr(exc, "reason", exc)).__name__) from None


def send_once(target: WebhookTarget, notice: Notice, timeout: float, post: Post) -> Delivery:
    """One attempt: what `bunsui notify test` reports per target."""
    host = host_of(target.url)
    try:
        status = post(target.url, notice.body(target.format), timeout)
    except DeliveryError as exc:
        return Delivery(target.name, host, delivered=False, attempts=1, error=str(exc))
    ok = 200 <= status < 300
    return Delivery(
        target.name,
        host,
        delivered=ok,
        attempts=1,
        status=status,
        error=None if ok else f"answered HTTP {status}",
    )


class Courier:
    """Delivers one target's notices in order on its own thread: each is tried up to
    `attempts` times with doubling delays, then dropped with a log line."""

    def __init__(
        self, target: WebhookTarget, settings: NotificationSettings, post: Post = post_json
    ) -> None:
        self.target = target
        self.settings = settings
        self.post = post
        self.host = host_of(target.url)
        self.outcomes: list[Delivery] = []
        """How each of the last 100 notices ended, newest last."""
        self._queue: queue.Queue[Notice] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"bunsui-notify-{target.name}", daemon=True
        )

    def start(self) -> None:
        """Begin delivering."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current attempt; queued notices are abandoned."""
        self._stop.set()
        self._thread.join(timeout)

    def submit(self, notice: Notice) -> bool:
        """Queue a notice without ever waiting; False (and a log line) when the queue is full."""
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            logger.warning(
                "notification %s for %s dropped: queue for %s (%s) is full",
                notice.kind,
                notice.id,
                self.target.name,
                self.host,
            )
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                notice = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            outcome = self.deliver(notice)
            self.outcomes = [*self.outcomes[-99:], outcome]

    def deliver(self, notice: Notice) -> Delivery:
        """Try until accepted, out of attempts, or stopped."""
        delay = self.settings.backoff_seconds
        outcome = Delivery(self.target.name, self.host, delivered=False, attempts=0)
        for attempt in range(1, self.settings.attempts + 1):
            outcome = send_once(self.target, notice, self.settings.timeout_seconds, self.post)
            outcome = dataclasses.replace(outcome, attempts=attempt)
            if outcome.delivered:
                return outcome
            if attempt < self.settings.attempts and self._stop.wait(delay):
                break
            delay *= 2
        logger.warning(
            "notification %s for %s dropped after %d attempt(s) to %s (%s): %s",
            notice.kind,
            notice.id,
            outcome.attempts,
            self.target.name,
            self.host,
            outcome.status or outcome.error,
        )
        return outcome
