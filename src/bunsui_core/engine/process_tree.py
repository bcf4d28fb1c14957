"""A job's process tree as Linux shows it in /proc: descendants, resident memory, a full kill.

A process that calls setsid or forks twice leaves its process group, but not the tree of a
child subreaper: orphans are re-parented to the nearest subreaper ancestor instead of init.
Each job runs under its own subreaper (`jobshim`), so "every process this job started" is
always "every descendant of its shim".
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PR_SET_CHILD_SUBREAPER = 36
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
KILL_ROUNDS = 50
"""Sweeps of SIGKILL over a tree; each catches processes forked while the last one ran."""


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat a tree walk needs."""

    pid: int
    ppid: int
    state: str
    start_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat parsed (the command name may hold spaces and parentheses), or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return ProcStat(pid, int(fields[1]), fields[0], int(fields[19]))
    except (IndexError, ValueError):
        return None


def set_child_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _all_stats() -> list[ProcStat]:
    stats = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats.append(stat)
    return stats


@functools.cache
def _has_children_files() -> bool:
    """Whether the kernel lists a task's children in /proc (CONFIG_PROC_CHILDREN)."""
    return (PROC / "self" / "task" / str(os.getpid()) / "children").exists()


def _children(pid: int) -> list[int]:
    """Direct children of a process from /proc/PID/task/*/children ([] once it is gone)."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
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


def rss_kb(pid: int) -> int:
    """Resident memory of one process in KiB (0 once it is gone or a zombie)."""
    try:
        resident = (PROC / str(pid) / "statm").read_text().split()[1]
    except (OSError, IndexError):
        return 0
    return int(resident) * PAGE_KB


def tree_rss_kb(pids: Iterable[int]) -> int:
    """Summed resident memory of the given processes, the way a container's usage adds up."""
    return sum(rss_kb(pid) for pid in pids)


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each pid that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


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
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
