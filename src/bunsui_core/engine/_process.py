"""One attempt of one command as a real child process: memory limit, timeout, whole-tree kill.

The command runs under a `jobshim` (its subreaper), in a cgroup of its own where one can be
made; the process's job monitor copies its logs, walks its tree for resident memory (both the
peak the attempt reports and, where no cgroup caps memory, the watchdog that OOM-kills it)
and kills it at its timeout. The attempt's own thread only waits for the shim to exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bunsui_core.engine import jobshim
from bunsui_core.engine.cgroups import CgroupHost, JobCgroup
from bunsui_core.engine.job_monitor import JobMonitor, WatchedTree
from bunsui_core.engine.log_sink import DEFAULT_LOG_MAX_BYTES, LogSink
from bunsui_core.engine.native_shim import NativeShim
from bunsui_core.engine.process_tree import cmdline, kill_descendants, kill_pids, read_stat
from bunsui_core.engine.shim_server import ShimServer
from bunsui_core.model.session import MemoryEnforcement


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
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    label: str = "job"
    """Part of the job cgroup's name, so an operator can tell whose it is."""


@dataclass(frozen=True)
class ProcessResult:
    """How an attempt ended; exactly one of exit_code / signal / spawn_error / lost_report
    is set."""

    pid: int | None
    exit_code: int | None
    signal: int | None
    peak_rss_mb: float | None
    elapsed_seconds: float
    timed_out: bool = False
    spawn_error: str | None = None
    oom_killed: bool = False
    memory_enforcement: MemoryEnforcement | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    """The logs' last bytes, as their files end."""
    lost_report: bool = False
    """The shim exited 0 but left no readable report of how the command ended: a job that
    garbled or filled its shim's status pipe (through /proc). The attempt failed."""

    @property
    def succeeded(self) -> bool:
        """Exit code 0 and not killed."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


def is_job_shim(pid: int) -> bool:
    """Whether `pid` is (still) a bunsui job shim, not a reaped one's reused pid."""
    return jobshim.is_shim_command(cmdline(pid))


def kill_job(pid: int) -> None:
    """SIGKILL a job's whole tree below its shim, setsid'd and double-forked processes
    included, and tell the shim to finish: it reaps them and reports how the command ended."""
    kill_descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)


SHIM_GRACE_SECONDS = 2.0
"""How long a shim whose tree was killed may take to exit before it is killed itself."""


class LiveProcessGroups:
    """Jobs still running (by shim pid), so a cancel or timeout can kill whole trees at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()

    def add(self, pid: int) -> None:
        """Track a shim just started."""
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        """Forget a shim once it is reaped: its pid may be reused from now on."""
        with self._lock:
            self._pids.discard(pid)

    def kill(self, pid: int) -> None:
        """Kill one job's tree if it is still ours (never a reaped, possibly reused, pid)."""
        with self._lock:
            if pid in self._pids:
                self._kill(pid)

    def kill_all(self) -> None:
        """Kill every tracked job's tree (cancel, session timeout, interrupted foreground run)."""
        with self._lock:
            for pid in self._pids:
                self._kill(pid)

    def _kill(self, pid: int) -> None:
        kill_job(pid)
        # A shim that does not exit (stopped by its job, say) is killed after a grace period.
        timer = threading.Timer(SHIM_GRACE_SECONDS, self._kill_shim, args=(pid,))
        timer.daemon = True
        timer.start()

    def _kill_shim(self, pid: int) -> None:
        with self._lock:
            if pid in self._pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def _peak_rss_mb(maxrss_kb: int, shim_rss_kb: int, sampled_kb: int) -> float | None:
    """The job's peak RSS. wait4's figure also counts what the fork shared with the (small)
    shim: above that it is the job's own; below it a sample of the tree is better; a job
    quicker than the sampler still has wait4's figure, an upper bound of its own peak."""
    if maxrss_kb > shim_rss_kb * 1.1 + 4096 or not sampled_kb:
        return round(max(maxrss_kb, sampled_kb) / 1024, 1) if maxrss_kb else None
    return round(sampled_kb / 1024, 1)


def _kill_stragglers(seen: dict[int, int]) -> None:
    """Processes of the tree that outlived their shim (it was killed) were re-parented to
    this subreaper: kill those still running with the start time they had, and reap them."""
    mine = []
    for pid, start in seen.items():
        stat = read_stat(pid)
        if stat is not None and stat.start_ticks == start:
            mine.append(pid)
    kill_pids(mine)
    for pid in mine:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _job_cgroup(cgroups: CgroupHost | None, label: str, limit_mb: int | None) -> JobCgroup | None:
    """A cgroup for this attempt; if the host stopped allowing one, the watchdog takes over."""
    if cgroups is None:
        return None
    try:
        return cgroups.create(label, limit_mb)
    except OSError:
        return None


class _StatusPipe:
    """The pipe a shim reports on (JSON lines), from its first word to how the command ended."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self._heard = b""

    def close_write(self) -> None:
        """Drop this process's write end (the shim holds its own)."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def first_word(self) -> dict[str, object]:
        """With every other writer gone: the shim's first line, or {} when no shim holds the
        pipe (EOF at once). Blocks only until a shim that exists says its first word."""
        self.close_write()
        while b"\n" not in self._heard and (chunk := os.read(self.read_fd, 65536)):
            self._heard += chunk
        return _merged(self._heard.split(b"\n", 1)[0])

    def reports(self) -> dict[str, object]:
        """Every line the shim and its child wrote, merged; closes the pipe."""
        self.close_write()
        raw = self._heard
        while chunk := os.read(self.read_fd, 65536):
            raw += chunk
        os.close(self.read_fd)
        return _merged(raw)


def _merged(raw: bytes) -> dict[str, object]:
    """JSON lines merged into one dict, later keys winning; a torn line is skipped."""
    merged: dict[str, object] = {}
    for line in raw.splitlines():
        with contextlib.suppress(ValueError):
            report = json.loads(line)
            if isinstance(report, dict):
                merged.update(report)
    return merged


def _start_shim(
    spec: ProcessSpec,
    cgroup: JobCgroup | None,
    shims: ShimServer | NativeShim | None,
    *,
    logs: tuple[int, int],
) -> tuple[int, _StatusPipe]:
    """The attempt's shim, a child of this process: the native shim when the run has one,
    else cloned by the shim server when there is one that still answers, else a new
    interpreter. Returns its pid and its status pipe.

    A server that dies after cloning the shim but before replying leaves a running job: the
    clone's first word on the status pipe is its pid, and that shim is adopted rather than
    the job started a second time."""
    cgroup_dir = str(cgroup.path) if cgroup is not None else None
    status = _StatusPipe()
    try:
        if isinstance(shims, NativeShim):
            # Its own exec failing (no memory, no process left) is this attempt's spawn
            # error; the command's own start is the shim's to report.
            fds = (*logs, status.write_fd)
            pid = shims.spawn(spec.argv, env=spec.env, cwd=spec.cwd, cgroup=cgroup_dir, fds=fds)
            return pid, status
        if shims is not None and not shims.broken:
            try:
                pid = shims.spawn(
                    spec.argv,
                    env=spec.env,
                    cwd=spec.cwd,
                    cgroup=cgroup_dir,
                    fds=(*logs, status.write_fd),
                )
                return pid, status
            except ConnectionError:
                shims.broken = True
                clone = status.first_word().get("shim")
                if isinstance(clone, int):
                    return clone, status
                status.reports()
                status = _StatusPipe()
        return _popen_shim(spec, cgroup_dir, logs, status.write_fd), status
    except BaseException:
        status.reports()
        raise
    finally:
        status.close_write()


def _popen_shim(
    spec: ProcessSpec, cgroup_dir: str | None, logs: tuple[int, int], status_fd: int
) -> int:
    """A shim of its own for this attempt: a new interpreter."""
    argv = [*jobshim.argv_prefix(), "--status-fd", str(status_fd)]
    if cgroup_dir is not None:
        argv += ["--cgroup", cgroup_dir]
    proc = subprocess.Popen(
        [*argv, "--", *spec.argv],
        stdin=subprocess.DEVNULL,
        stdout=logs[0],
        stderr=logs[1],
        cwd=spec.cwd,
        env=dict(spec.env),
        start_new_session=True,
        pass_fds=(status_fd,),
    )
    proc.returncode = 0  # waited for with wait4 by the caller, never by Popen
    return proc.pid


def run_process(
    spec: ProcessSpec,
    live: LiveProcessGroups,
    on_start: Callable[[int], None] | None = None,
    *,
    cgroups: CgroupHost | None = None,
    shims: ShimServer | NativeShim | None = None,
) -> ProcessResult:
    """Start the command under its shim, wait for it, and report what happened.

    A timeout, the watchdog or a cancel kills the whole tree; when the attempt ends nothing
    it started is left running. `on_start(pid)` lets the caller record the shim's pid, so the
    tree can still be killed if the caller itself dies; when it raises, the tree is killed
    and reaped first, then its exception is raised.
    """
    started = time.monotonic()
    limit = spec.memory_limit_mb
    cgroup = _job_cgroup(cgroups, spec.label, limit)
    enforcement = (
        (cgroup.mechanism if cgroup is not None else MemoryEnforcement.WATCHDOG) if limit else None
    )
    monitor = JobMonitor.shared()
    out, err = (
        LogSink(spec.stdout_path, spec.log_max_bytes),
        LogSink(spec.stderr_path, spec.log_max_bytes),
    )
    try:
        pid, status = _start_shim(spec, cgroup, shims, logs=(out.write_fd, err.write_fd))
    except (OSError, subprocess.SubprocessError) as exc:
        for sink in (out, err):  # no process holds the pipes: nothing to copy
            sink.started()
            sink.finished()
        if cgroup is not None:
            cgroup.remove()
        return ProcessResult(
            None, None, None, None, time.monotonic() - started, spawn_error=str(exc)
        )
    out.started()
    err.started()
    live.add(pid)
    tree = WatchedTree(
        pid,
        watchdog_limit_kb=limit * 1024
        if limit and enforcement is MemoryEnforcement.WATCHDOG
        else None,
        timeout_seconds=spec.timeout_seconds,
        on_timeout=lambda: live.kill(pid),
    )
    # One wake-up of the monitor: it copies the logs (the job blocks on a full pipe until
    # then, losing nothing), samples the tree and keeps its clock.
    monitor.watch(tree, out, err)
    unrecorded: Exception | None = None
    if on_start is not None:
        try:
            on_start(pid)
        except Exception as exc:
            # A job whose start could not be recorded must not run on untracked: its tree is
            # killed and reaped like any other, then the caller hears why.
            unrecorded = exc
            live.kill(pid)
    try:
        # Wait for the exit without reaping: until unwatched, the pid must stay the shim's.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    finally:
        monitor.unwatch(tree)
        live.discard(pid)
    _, shim_status, _usage = os.wait4(pid, 0)
    _kill_stragglers(tree.seen)
    oom_killed = tree.oom_killed
    if cgroup is not None:
        oom_killed = oom_killed or cgroup.oom_kills() > 0
        cgroup.remove()
    for sink in (out, err):
        sink.close()
    report = status.reports()
    result = _result(
        report,
        pid,
        os.waitstatus_to_exitcode(shim_status),
        sampled_kb=tree.peak_kb,
        started=started,
        timed_out=tree.timed_out,
        oom_killed=oom_killed,
        enforcement=enforcement,
        limit_mb=limit,
    )
    if unrecorded is not None:
        raise unrecorded
    return replace(result, stdout_tail=out.tail(), stderr_tail=err.tail())


def _result(
    report: dict[str, object],
    pid: int,
    shim_code: int,
    *,
    sampled_kb: int,
    started: float,
    timed_out: bool,
    oom_killed: bool,
    enforcement: MemoryEnforcement | None,
    limit_mb: int | None,
) -> ProcessResult:
    """Fold the shim's report (or its own death) into how the attempt ended."""
    elapsed = round(time.monotonic() - started, 3)
    spawn_error = report.get("spawn_error")
    wait_status = report.get("wait_status")
    # No wait status: the shim itself was killed (a job killing its own parent); its end.
    code = _exit_code(wait_status)
    lost_report = code is None and shim_code == 0 and not spawn_error
    if code is None:
        code = shim_code
    killed_by = -code if code < 0 else None
    maxrss = report.get("maxrss_kb")
    shim_rss = report.get("shim_rss_kb")
    peak = _peak_rss_mb(
        maxrss if isinstance(maxrss, int) else 0,
        shim_rss if isinstance(shim_rss, int) else 0,
        sampled_kb,
    )
    if oom_killed and limit_mb:
        # Like a container's OOM kill: the job reached its limit and was killed there.
        peak = max(peak or 0.0, float(limit_mb))
    return ProcessResult(
        pid=pid,
        exit_code=None if killed_by or lost_report else code,
        signal=killed_by,
        peak_rss_mb=peak,
        elapsed_seconds=elapsed,
        timed_out=timed_out,
        spawn_error=str(spawn_error) if spawn_error else None,
        oom_killed=oom_killed and not timed_out,
        memory_enforcement=enforcement,
        lost_report=lost_report,
    )


def _exit_code(wait_status: object) -> int | None:
    """A wait status as an exit code (negative: the signal); None when it is not one."""
    if not isinstance(wait_status, int) or isinstance(wait_status, bool):
        return None
    try:
        return os.waitstatus_to_exitcode(wait_status)
    except (ValueError, OverflowError):
        return None
