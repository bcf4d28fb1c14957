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


SAMPLE_SECONDS = 0.02


def _status_kb(pid: int | str, field: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class _PeakSampler:
    """Samples the child's own high-water RSS while it runs.

    wait4's ru_maxrss also counts the memory the forked child shared with this process before
    exec, so when this process is large (an MCP server, a test run) a small job would look as
    big as its parent. The sampled VmHWM belongs to the exec'd program alone.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            hwm = _status_kb(self.pid, "VmHWM")
            if hwm is not None:
                self.peak_kb = max(self.peak_kb or 0, hwm)
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> int | None:
        self._done.set()
        self._thread.join()
        return self.peak_kb


def _peak_rss_mb(maxrss_kb: int, parent_rss_kb: int | None, sampled_kb: int | None) -> float | None:
    """The child's peak RSS: wait4's figure when it exceeds what the fork shared with us,
    else the sampled one, else unknown (None) rather than the parent's size."""
    if parent_rss_kb is None or maxrss_kb > parent_rss_kb * 1.1 + 4096:
        return round(maxrss_kb / 1024, 1)
    return round(sampled_kb / 1024, 1) if sampled_kb else None


def run_process(
    spec: ProcessSpec, live: LiveProcessGroups, on_start: Callable[[int], None] | None = None
) -> ProcessResult:
    """Start the command in its own process group, wait for it, and report what happened.

    The child is reaped with wait4 so its own peak RSS is known; a timeout kills the whole
    group, grandchildren included. `on_start(pid)` lets the caller record the pid, so the
    group can still be killed if the caller itself dies.
    """
    started = time.monotonic()
    parent_rss_kb = _status_kb("self", "VmRSS")
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
    sampler = _PeakSampler(proc.pid)
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
        sampled_kb = sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # The group may outlive its leader (background grandchildren): take it down too.
    _kill_group(proc.pid)
    elapsed = time.monotonic() - started
    killed_by = -proc.returncode if proc.returncode < 0 else None
    return ProcessResult(
        pid=proc.pid,
        exit_code=None if killed_by else proc.returncode,
        signal=killed_by,
        peak_rss_mb=_peak_rss_mb(usage.ru_maxrss, parent_rss_kb, sampled_kb),
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
