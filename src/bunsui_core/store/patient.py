"""A store that waits out a busy database: for callers that cannot simply be asked again.

Anyone may hold SQLite's write lock for a while (a burst of audited reads, a backup); the
store gives up after its busy timeout with STORE_LOCKED. Most callers get that code and
try again. Two cannot: a runner that died on it would leave a session `failed/RUNNER_LOST`
whose jobs really completed, and an approved ticket's action that failed on it would burn
the ticket though nothing ran. Both call the store through `PatientStore`, which retries
each store call with bounded backoff.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from bunsui_core.errors import BunsuiError, ErrorCode

RETRY_SECONDS = 300.0
"""How long a runner keeps trying before it gives up on the store (and so dies)."""
FIRST_DELAY = 0.05
MAX_DELAY = 2.0


def retry_locked(
    call: Callable[..., Any],
    *,
    budget_seconds: float = RETRY_SECONDS,
    deadline: float | None = None,
) -> Any:
    """`call()`, tried again while it fails with STORE_LOCKED, until the budget is spent (or,
    given, until the `time.monotonic()` deadline).

    On SQLite a call that failed STORE_LOCKED could not take the write lock and changed
    nothing, so a retry does what one call would have done. On DynamoDB STORE_LOCKED also
    names a request whose answer was lost (a read timeout): it may have been applied, and
    its retry then fails as a conflict (a create by key) or, for an audit entry, records it
    twice. botocore's own retries already take that chance.
    """
    end = time.monotonic() + budget_seconds if deadline is None else deadline
    delay = FIRST_DELAY
    while True:
        try:
            return call()
        except BunsuiError as exc:
            if exc.code != ErrorCode.STORE_LOCKED or time.monotonic() + delay > end:
                raise
        time.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)


class PatientStore:
    """Wraps a Store; every method retries STORE_LOCKED (see `retry_locked`), each call for
    `budget_seconds`, or with `shared` all calls until `budget_seconds` from now: a runner
    may wait for every call, a ticket's approver only so long for the whole action."""

    def __init__(
        self, store: Any, *, budget_seconds: float = RETRY_SECONDS, shared: bool = False
    ) -> None:
        self._store = store
        self._budget = budget_seconds
        self._deadline = time.monotonic() + budget_seconds if shared else None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def patient(*args: Any, **kwargs: Any) -> Any:
            return retry_locked(
                lambda: attribute(*args, **kwargs),
                budget_seconds=self._budget,
                deadline=self._deadline,
            )

        return patient
