"""What a terminal shows while something runs: run progress, a session's live view, log lines.

Live output goes to stderr and only when stdout is a terminal, so `bunsui ... | jq` and
`--format json` stay clean: a script sees the same result it would without a terminal.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bunsui_mcp._cli_layout import terminal_width

DONE = frozenset({"completed", "skipped", "succeeded"})
FAILED = frozenset({"failed", "timeout", "upstream_failed"})
_JOB_STATUS = re.compile(r"^job (\S+): (\w+)")


def on_terminal() -> bool:
    """Live output only for a person: stdout and stderr both a terminal."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02}:{second:02}" if hours else f"{minute:02}:{second:02}"


class RunProgress:
    """The engine's progress messages as a live line: jobs done, running, failed, elapsed."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.jobs: dict[str, str] = {}
        self._live: Any = None

    def __call__(self, message: str) -> None:
        """One engine message: printed above the live line, counted in it."""
        match = _JOB_STATUS.match(message)
        if match:
            self.jobs[match[1]] = match[2]
        if self._live is not None:
            self._live.console.print(f"· {message}", markup=False, highlight=False)

    def summary(self) -> str:
        """`2 done · 1 running · 0 failed · 00:12`; after Ctrl-C `· 2 cancelled` too, since a
        job someone stopped did not fail."""
        states = list(self.jobs.values())
        done = sum(s in DONE for s in states)
        running = states.count("running")
        failed = sum(s in FAILED for s in states)
        cancelled = states.count("cancelled")
        stopped = f" · {cancelled} cancelled" if cancelled else ""
        elapsed = _clock(time.monotonic() - self.started)
        return f"{done} done · {running} running · {failed} failed{stopped} · {elapsed}"

    @contextmanager
    def shown(self) -> Iterator[RunProgress]:
        """The live line on stderr while the body runs; gone when it ends."""
        from rich.console import Console  # noqa: PLC0415 - only a terminal run pays for Rich
        from rich.live import Live  # noqa: PLC0415

        console = Console(file=sys.stderr, highlight=False)
        with Live(
            self.summary(),
            console=console,
            refresh_per_second=4,
            transient=True,
            get_renderable=self.summary,
        ) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None


def _duration(job: dict[str, Any]) -> str:
    """Run time so far (running) or in all (finished), from the job's recorded times."""
    if not job.get("started_at"):
        return "-"
    start = datetime.fromisoformat(job["started_at"])
    end = datetime.fromisoformat(job["finished_at"]) if job.get("finished_at") else None
    return f"{((end or datetime.now(UTC)) - start).total_seconds():.1f}s"


def _memory(job: dict[str, Any]) -> str:
    peaks = [op["peak_rss_mb"] for op in job.get("operations", []) if op.get("peak_rss_mb")]
    limits = [
        op["memory_limit_mb"] for op in job.get("operations", []) if op.get("memory_limit_mb")
    ]
    if not peaks:
        return "-"
    limit = f" / {max(limits)}" if limits else ""
    return f"{max(peaks):.0f}{limit} MiB"


def _elapsed(session: dict[str, Any]) -> str:
    """How long the session has run (or ran), from its recorded start."""
    if not session.get("started_at"):
        return _clock(0)
    start = datetime.fromisoformat(session["started_at"])
    end = datetime.fromisoformat(session["finished_at"]) if session.get("finished_at") else None
    return _clock(((end or datetime.now(UTC)) - start).total_seconds())


def session_view(session: dict[str, Any], jobs: list[dict[str, Any]]) -> Any:
    """A Rich table of a session's jobs: status, duration, peak memory against the limit."""
    from rich.table import Table  # noqa: PLC0415

    title = f"{session['session_id']}  {session['pipeline_id']}  {session['status']}"
    table = Table(
        title=f"{title}  {_elapsed(session)}",
        title_justify="left",
        box=None,
        pad_edge=False,
        padding=(0, 2, 0, 0),
    )
    for header in ("JOB", "STATUS", "DURATION", "MEMORY"):
        table.add_column(header, no_wrap=True)
    for job in jobs:
        table.add_row(job["job_id"], job["status"], _duration(job), _memory(job))
    return table


def watch_live(
    read: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]],
    interval: float,
    is_over: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Redraw the session's jobs every `interval` seconds until it ends; its last state."""
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    session, jobs = read()
    console = Console(file=sys.stderr, highlight=False, width=terminal_width())
    with Live(session_view(session, jobs), console=console, transient=True) as live:
        while not is_over(session):
            time.sleep(interval)
            session, jobs = read()
            live.update(session_view(session, jobs))
    return session


def new_lines(previous: list[str], current: list[str]) -> list[str]:
    """The lines of a log tail not printed yet: the tail moves on as the log grows, so what
    was seen before overlaps the start of what is read now."""
    if current[: len(previous)] == previous:
        return current[len(previous) :]
    for overlap in range(min(len(previous), len(current)), 0, -1):
        if previous[-overlap:] == current[:overlap]:
            return current[overlap:]
    return current
