"""A job's process tree as Linux shows it in /proc: descendants, resident memory, a full kill.

A process that calls setsid or forks twice leaves its process group, but not the tree of a
child subreaper: orphans are re-parented to the nearest subreaper ancestor instead of init.
Each job runs under its own subreaper (`jobshim`), so "every process this job started" is
always "every descendant of its shim".
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:  # the shim imports this module: no typing, no ctypes until needed
    import ctypes

# The job shim imports this module at every job start: standard library only, and none of
# the costly imports (pathlib, dataclasses, contextlib; ctypes only when used).
PROC = "/proc"
PR_SET_CHILD_SUBREAPER = 36
KILL_ROUNDS = 50
"""Sweeps of SIGKILL over a tree; each catches processes forked while the last one ran."""


class ProcStat:
    """The fields of /proc/PID/stat a tree walk needs."""

    __slots__ = ("pid", "ppid", "start_ticks", "state")

    def __init__(self, pid: int, ppid: int, state: str, start_ticks: int) -> None:
        self.pid, self.ppid, self.state, self.start_ticks = pid, ppid, state, start_ticks


def _read(pid: int | str, name: str) -> bytes:
    """A file of /proc/PID; OSError once the process is gone."""
    with open(f"{PROC}/{pid}/{name}", "rb") as handle:
        return handle.read()


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat parsed (the command name may hold spaces and parentheses), or None."""
    try:
        text = _read(pid, "stat")
    except OSError:
        return None
    fields = text.rsplit(b")", 1)[-1].split()
    try:
        return ProcStat(pid, int(fields[1]), fields[0].decode(), int(fields[19]))
    except (IndexError, ValueError):
        return None


@functools.cache
def libc() -> ctypes.CDLL:
    """This process's C library through ctypes, loaded once: each CDLL defines a new class,
    which the shim server would otherwise pay for per clone, and each clone again."""
    import ctypes  # noqa: PLC0415 - only the shim and the runner pay for it, not every CLI call

    return ctypes.CDLL(None, use_errno=True)


def set_child_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    return bool(libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _all_stats() -> list[ProcStat]:
    stats = []
    for name in os.listdir(PROC):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                stats.append(stat)
    return stats


@functools.cache
def _has_children_files() -> bool:
    """Whether the kernel lists a task's children in /proc (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"{PROC}/self/task/{os.getpid()}/children")


def _children(pid: int) -> list[int]:
    """Direct children of a process from /proc/PID/task/*/children ([] once it is gone)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            found.extend(int(c) for c in _read(pid, f"task/{task}/children").split())
        except (OSError, ValueError):
            continue
    return found


def descendants(root: int) -> list[ProcStat]:
    """Every living (not yet reaped) descendant of `root`, nearest first; root excluded."""
    if not _has_children_files():
        return _descendants_by_scan(root)
    found: list[ProcStat] = []
    frontier = [root]
    seen = {root}
    while frontier:
        for child in _children(frontier.pop(0)):
            stat = read_stat(child)
            if stat is not None and child not in seen:
                seen.add(child)
                found.append(stat)
                frontier.append(child)
    return found


def _descendants_by_scan(root: int) -> list[ProcStat]:
    """The same walk over a full /proc scan, for kernels without the children files."""
    children: dict[int, list[ProcStat]] = {}
    for stat in _all_stats():
        children.setdefault(stat.ppid, []).append(stat)
    found: list[ProcStat] = []
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(0), []):
            found.append(child)
            frontier.append(child.pid)
    return found


def ancestors(pid: int) -> list[int]:
    """The parent chain of `pid` up to (not including) pid 0."""
    chain: list[int] = []
    stat = read_stat(pid)
    while stat is not None and stat.ppid > 0 and stat.ppid not in chain:
        chain.append(stat.ppid)
        stat = read_stat(stat.ppid)
    return chain


def memory_kb(pid: int | str) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB from one read of /proc/PID/status; 0s once gone."""
    rss = hwm = 0
    try:
        for line in _read(pid, "status").splitlines():
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith(b"VmHWM:"):
                hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return rss, hwm


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each pid that still exists."""
    for pid in pids:
        try:  # noqa: SIM105 - contextlib would be the shim's costliest import but one
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_descendants(root: int, *, deadline_seconds: float = 2.0) -> int:
    """SIGKILL every descendant of `root` until none is left alive; returns how many died.

    Zombies are dead already (their reaper collects them); sweeping again catches a process
    that forked between two sweeps.
    """
    killed: set[int] = set()
    end = time.monotonic() + deadline_seconds
    for _ in range(KILL_ROUNDS):
        alive = [s.pid for s in descendants(root) if s.state not in {"Z", "X"}]
        if not alive or time.monotonic() > end:
            break
        kill_pids(alive)
        killed.update(alive)
    return len(killed)


def cmdline(pid: int) -> list[str]:
    """argv of a process, [] when it is gone or unreadable."""
    try:
        raw = _read(pid, "cmdline")
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
