"""Stopping a foreground run from the terminal: the first Ctrl-C (or SIGTERM) cancels it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


def _engine_cancel() -> Callable[[], list[str]] | None:
    """The local engine's cancel of this process's foreground runs, when it has one."""
    from bunsui_core.engine import local  # noqa: PLC0415 - only waiting commands need it

    cancel: Callable[[], list[str]] | None = getattr(local, "cancel_active_runs", None)
    return cancel


@contextmanager
def cancel_on_interrupt() -> Iterator[None]:
    """While a command waits for a run: the first SIGINT/SIGTERM cancels its session (every
    job's process tree is killed, jobs and session end `cancelled`, the command exits 12);
    a second one, or one before any job started, stops waiting at once (exit 130)."""
    received = 0

    def handle(_signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        cancel = _engine_cancel()
        if received > 1 or cancel is None or not cancel():
            raise KeyboardInterrupt
        if sys.stderr.isatty():
            print("\ncancelling the session (again to stop waiting)", file=sys.stderr, flush=True)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
