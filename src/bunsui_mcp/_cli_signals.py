"""Stopping a foreground run from the terminal: the first Ctrl-C (SIGTERM, or the terminal's
hangup) cancels it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def cancel_on_interrupt() -> Iterator[None]:
    """While a command waits for a run: the first SIGINT/SIGTERM/SIGHUP cancels its session
    (every job's process tree is killed, jobs and session end `cancelled`, the command exits
    12); a second one, or one before any job started, stops waiting at once (exit 130)."""
    from bunsui_core.engine import cancel_active_runs  # noqa: PLC0415 - waiting commands only

    received = 0

    def handle(_signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1 or not cancel_active_runs():
            raise KeyboardInterrupt
        if sys.stderr.isatty():
            print("\ncancelling the session (again to stop waiting)", file=sys.stderr, flush=True)

    # A hangup (the terminal closed) too, unless ignored (`nohup`): else the command would
    # die at once and leave its jobs running with no one to end or record them.
    hangup = [] if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else [signal.SIGHUP]
    wanted = (signal.SIGINT, signal.SIGTERM, *hangup)
    previous = {number: signal.signal(number, handle) for number in wanted}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
