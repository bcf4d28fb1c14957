"""The marks a job leaves on a process, read from /proc for any pid: light enough for the
`bunsui` client, which checks the CLI server it reaches was not started inside a job
(standard library only, no dataclasses: a client call must stay a few milliseconds).

A mark is (evidence, detail): "cgroup" (membership in a `bunsui-job-*` cgroup, which
outlives even a killed shim) or "process tree" (a job shim among its ancestors: each job
runs under its own shim, a child subreaper, so setsid or a double fork never leaves it).
"""

from __future__ import annotations

import select

from bunsui_core.engine.jobshim import is_shim_command
from bunsui_core.engine.process_tree import ancestors, cmdline

JOB_PREFIX = "bunsui-job-"
"""Every job cgroup's name starts so."""
RUN_VARIABLES = ("BUNSUI_SESSION_ID", "BUNSUI_JOB_ID")
"""Variables every job gets (a job can unset them: never the only mark checked)."""

Mark = tuple[str, str]


def cgroups_of(pid: int | None = None) -> dict[str, str]:
    """This process's (or `pid`'s) cgroup paths: controller (or "" for v2) -> path in that
    hierarchy; {} when unreadable."""
    paths: dict[str, str] = {}
    try:
        with open(f"/proc/{pid or 'self'}/cgroup", encoding="utf-8") as listing:
            lines = listing.read().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def by_cgroup(pid: int | None) -> Mark | None:
    for path in cgroups_of(pid).values():
        for part in path.split("/"):
            if part.startswith(JOB_PREFIX):
                return ("cgroup", f"member of cgroup {path}")
    return None


def by_process_tree(pid: int, itself: bool) -> Mark | None:
    for each in [pid, *ancestors(pid)] if itself else ancestors(pid):
        if is_shim_command(cmdline(each)):
            return ("process tree", f"descendant of job shim {each}")
    return None


def of_pidfd(pidfd: int, role: str) -> Mark | None:
    """The marks of the process behind a pidfd (its cgroups, itself, its ancestors), read
    while the pidfd shows it alive: a pid is never reused while its process exists, so what
    was read is that process's. One gone before that counts as marked: unproven is refused.
    `role` names it in the detail ("the calling process", "the CLI server")."""
    pid = pid_of(pidfd)
    found = None if pid is None else by_cgroup(pid) or by_process_tree(pid, itself=True)
    if pid is None or not alive(pidfd):
        return ("gone", f"{role} ended before it could be identified")
    if found is None:
        return None
    return (found[0], f"{role} {pid}: {found[1]}")


def pid_of(pidfd: int) -> int | None:
    """The pid a pidfd names (the kernel's fdinfo), None when unreadable."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", encoding="ascii") as info:
            for line in info:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except (OSError, ValueError, IndexError):
        return None
    return None


def alive(pidfd: int) -> bool:
    """Whether the process behind a pidfd has not exited (it polls readable once it has)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return not poller.poll(0)
