"""Stopping a foreground run from the terminal: the first Ctrl-C (or SIGTERM) cancels it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def cancel_on_interrupt() -> Iterator[None]:
    """While a command waits for a run: the first SIGINT/SIGTERM cancels its session (every
    job's process tree is killed, jobs and session end `cancelled`, the command exits 12);
    a second one, or one before any job started, stops waiting at once (exit 130)."""
    from bunsui_core.engine import cancel_active_runs  # noqa: PLC0415 - waiting commands only

    received = 0

    def handle(_signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1 or not cancel_active_runs():
            raise KeyboardInterrupt
        if sys.stderr.isatty():
            print("\ncancelling the session (again to stop waiting)", file=sys.stderr, flush=True)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
