"""One cgroup per job attempt: resident-memory limits and OOM kills the way containers get them.

cgroup v2 (`memory.max`) where bunsui may create a cgroup with the memory controller (root,
or a delegated subtree), cgroup v1 (`memory.limit_in_bytes`) where that is the host's memory
hierarchy; otherwise there is none and the engine's watchdog enforces the limit instead.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from bunsui_core.engine.job_marks import JOB_PREFIX, cgroups_of
from bunsui_core.model.session import MemoryEnforcement

GROUP_DIR = "bunsui"
REMOVE_SECONDS = 2.0


@dataclass(frozen=True)
class _Mount:
    fstype: str
    root: str
    point: Path
    options: frozenset[str]


def _mounts() -> list[_Mount]:
    """cgroup and cgroup2 mounts from /proc/self/mountinfo."""
    mounts = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] in {"cgroup", "cgroup2"}:
            mounts.append(
                _Mount(rest[0], fields[3], Path(fields[4]), frozenset(rest[2].split(",")))
            )
    return mounts


def _in_mount(mount: _Mount, path: str) -> Path:
    """Where a cgroup path of this hierarchy lives under the mount (a container sees a subtree)."""
    relative = os.path.relpath(path, mount.root) if mount.root != "/" else path.lstrip("/")
    return mount.point / ("" if relative == "." else relative)


def _read(path: Path) -> str:
    """A control file's text. Raw reads, not a text file object: every attempt reads one, and
    each of the text file's eight system calls lets the runner's other threads take the GIL."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def _write(path: Path, text: str) -> None:
    """Write a control file in one call (the kernel takes a control value whole)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class JobCgroup:
    """The cgroup of one attempt: join it before exec, read its OOM count, kill, remove."""

    path: Path
    mechanism: MemoryEnforcement

    @property
    def procs_file(self) -> Path:
        """Writing a pid here moves that process (and its future children) in."""
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        """Processes still inside."""
        try:
            return [int(p) for p in _read(self.procs_file).split()]
        except (OSError, ValueError):
            return []

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in this cgroup."""
        name = (
            "memory.events"
            if self.mechanism is MemoryEnforcement.CGROUP_V2
            else ("memory.oom_control")
        )
        try:
            for line in _read(self.path / name).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            return 0
        return 0

    def kill(self) -> None:
        """SIGKILL everything inside, also processes that left the job's process tree."""
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        for _ in range(20):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup (it empties once its zombies are reaped).
        An empty one, the usual case once the shim has reaped the job, goes in one rmdir."""
        with contextlib.suppress(OSError):
            self.path.rmdir()
            return
        self.kill()
        end = time.monotonic() + REMOVE_SECONDS
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > end:
                    return
                time.sleep(0.02)


class CgroupHost:
    """Where this process may create job cgroups with a memory controller, if anywhere."""

    def __init__(self, parent: Path, mechanism: MemoryEnforcement) -> None:
        self.parent = parent
        self.mechanism = mechanism
        self._counter = itertools.count(1)

    def create(self, label: str, memory_limit_mb: int | None) -> JobCgroup:
        """A fresh cgroup for one attempt, its memory capped when a limit is given (no swap
        beyond it, and under v2 an OOM kills the whole group, as in a container)."""
        path = self.parent / f"{JOB_PREFIX}{label}-{os.getpid()}-{next(self._counter)}"
        path.mkdir(mode=0o755)
        limit = str(memory_limit_mb * 2**20) if memory_limit_mb else None
        try:
            if self.mechanism is MemoryEnforcement.CGROUP_V2:
                if limit:
                    _write(path / "memory.max", limit)
                    _optional_write(path / "memory.swap.max", "0")
                _optional_write(path / "memory.oom.group", "1")
            elif limit:
                _write(path / "memory.limit_in_bytes", limit)
                _optional_write(path / "memory.memsw.limit_in_bytes", limit)
        except OSError:
            path.rmdir()
            raise
        return JobCgroup(path, self.mechanism)


def _optional_write(path: Path, text: str) -> None:
    """Write a control file the kernel may not have (no swap accounting, older kernels)."""
    with contextlib.suppress(OSError):
        _write(path, text)


def _probe(host: CgroupHost) -> CgroupHost | None:
    """The host, if a capped job cgroup can really be made and removed there."""
    try:
        probe = host.create("probe", 64)
    except OSError:
        return None
    probe.remove()
    return host


def _v2_candidates(mount: _Mount, own: str) -> list[Path]:
    """Where bunsui's cgroups could go under v2: the hierarchy's root (root only may use it)
    then this process's own cgroup (a delegated subtree)."""
    return [mount.point, _in_mount(mount, own)]


def _prepare_v2(base: Path) -> Path | None:
    """`base/bunsui` with the memory controller enabled for its children, or None."""
    try:
        if "memory" not in (base / "cgroup.controllers").read_text().split():
            return None
        if "memory" not in (base / "cgroup.subtree_control").read_text().split():
            _write(base / "cgroup.subtree_control", "+memory")
        group = base / GROUP_DIR
        group.mkdir(mode=0o755, exist_ok=True)
        if "memory" not in (group / "cgroup.subtree_control").read_text().split():
            _write(group / "cgroup.subtree_control", "+memory")
    except OSError:
        return None
    return group


@functools.cache
def discover(mechanism: MemoryEnforcement | None = None) -> CgroupHost | None:
    """The best cgroup host this process may use (v2, then v1), or one mechanism forced;
    None when only the watchdog is left."""
    own = cgroups_of()
    mounts = _mounts()
    if mechanism in (None, MemoryEnforcement.CGROUP_V2):
        for mount in (m for m in mounts if m.fstype == "cgroup2"):
            for base in _v2_candidates(mount, own.get("", "/")):
                group = _prepare_v2(base)
                if group is not None:
                    host = _probe(CgroupHost(group, MemoryEnforcement.CGROUP_V2))
                    if host is not None:
                        return host
    if mechanism in (None, MemoryEnforcement.CGROUP_V1):
        for mount in (m for m in mounts if m.fstype == "cgroup" and "memory" in m.options):
            group = _in_mount(mount, own.get("memory", "/")) / GROUP_DIR
            try:
                group.mkdir(mode=0o755, exist_ok=True)
            except OSError:
                continue
            host = _probe(CgroupHost(group, MemoryEnforcement.CGROUP_V1))
            if host is not None:
                return host
    return None
