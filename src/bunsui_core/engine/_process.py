"""One attempt of one command as a real child process: limits, timeout kill, peak memory."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

TAIL_BYTES = 4096


@dataclass(frozen=True)
class ProcessSpec:
    """Everything needed to start one attempt."""

    argv: list[str]
    env: Mapping[str, str]
    cwd: Path
    stdout_path: Path
    stderr_path: Path
    memory_limit_mb: int | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class ProcessResult:
    """How an attempt ended; exactly one of exit_code / signal / spawn_error is set."""

    pid: int | None
    exit_code: int | None
    signal: int | None
    peak_rss_mb: float | None
    elapsed_seconds: float
    timed_out: bool = False
    spawn_error: str | None = None

    @property
    def succeeded(self) -> bool:
        """Exit code 0 and not killed."""
        return self.exit_code == 0 and not self.timed_out


class LiveProcessGroups:
    """Process groups still running, so a cancel or timeout can kill whole trees at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()

    def add(self, pid: int) -> None:
        """Track a group leader just started."""
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        """Forget a group once its leader is reaped: its pid may be reused from now on."""
        with self._lock:
            self._pids.discard(pid)

    def kill(self, pid: int) -> None:
        """SIGKILL one group if it is still ours (never a reaped, possibly reused, pid)."""
        with self._lock:
            if pid in self._pids:
                _kill_group(pid)

    def kill_all(self) -> None:
        """SIGKILL every tracked group (cancel, session timeout, interrupted foreground run)."""
        with self._lock:
            for pid in self._pids:
                _kill_group(pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _memory_limiter(limit_mb: int) -> Callable[[], None]:
    """Runs in the child before exec: cap its address space so an allocation past it fails."""
    limit_bytes = limit_mb * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_process(
    spec: ProcessSpec, live: LiveProcessGroups, on_start: Callable[[int], None] | None = None
) -> ProcessResult:
    """Start the command in its own process group, wait for it, and report what happened.

    The child is reaped with wait4 so its own peak RSS is known; a timeout kills the whole
    group, grandchildren included. `on_start(pid)` lets the caller record the pid, so the
    group can still be killed if the caller itself dies.
    """
    started = time.monotonic()
    spec.stdout_path.parent.mkdir(parents=True, exist_ok=True)
    with spec.stdout_path.open("wb") as out, spec.stderr_path.open("wb") as err:
        try:
            proc = subprocess.Popen(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=spec.cwd,
                env=dict(spec.env),
                start_new_session=True,
                preexec_fn=_memory_limiter(spec.memory_limit_mb) if spec.memory_limit_mb else None,  # noqa: PLW1509 - setrlimit must run in the child before exec; it only calls one async-signal-safe syscall
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return ProcessResult(
                None, None, None, None, time.monotonic() - started, spawn_error=str(exc)
            )
    live.add(proc.pid)
    if on_start is not None:
        on_start(proc.pid)
    timed_out = threading.Event()
    timer = None
    if spec.timeout_seconds:

        def expire() -> None:
            timed_out.set()
            live.kill(proc.pid)

        timer = threading.Timer(spec.timeout_seconds, expire)
        timer.daemon = True
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer is not None:
            timer.cancel()
        live.discard(proc.pid)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # The group may outlive its leader (background grandchildren): take it down too.
    _kill_group(proc.pid)
    elapsed = time.monotonic() - started
    killed_by = -proc.returncode if proc.returncode < 0 else None
    return ProcessResult(
        pid=proc.pid,
        exit_code=None if killed_by else proc.returncode,
        signal=killed_by,
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        elapsed_seconds=round(elapsed, 3),
        timed_out=timed_out.is_set(),
    )


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a log as text (bad UTF-8 replaced), '' when absent."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
