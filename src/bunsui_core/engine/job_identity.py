"""Whether this process runs inside a job: such a process may never act as a human.

Three independent marks, any one of which is enough:
- the BUNSUI_* run variables every job gets (a job can unset them, so never alone);
- a `jobshim` among its ancestors: each job runs under its own shim, a child subreaper, so
  setsid or a double fork re-parents a process to the shim, never out of its tree;
- membership in a job cgroup (`bunsui-job-*`), which outlives even a killed shim.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from bunsui_core.engine.cgroups import JOB_PREFIX, own_cgroups
from bunsui_core.engine.jobshim import is_shim_command
from bunsui_core.engine.process_tree import ancestors, cmdline

RUN_VARIABLES = ("BUNSUI_SESSION_ID", "BUNSUI_JOB_ID")


@dataclass(frozen=True)
class EnclosingJob:
    """Evidence that this process belongs to a job."""

    evidence: str
    """environment | process tree | cgroup"""
    detail: str


def _by_environment() -> EnclosingJob | None:
    if all(os.environ.get(name) for name in RUN_VARIABLES):
        return EnclosingJob(
            "environment",
            f"job {os.environ['BUNSUI_JOB_ID']} of session {os.environ['BUNSUI_SESSION_ID']}",
        )
    return None


def _by_process_tree() -> EnclosingJob | None:
    for pid in ancestors(os.getpid()):
        if is_shim_command(cmdline(pid)):
            return EnclosingJob("process tree", f"descendant of job shim {pid}")
    return None


def _by_cgroup() -> EnclosingJob | None:
    for path in own_cgroups().values():
        for part in path.split("/"):
            if part.startswith(JOB_PREFIX):
                return EnclosingJob("cgroup", f"member of cgroup {path}")
    return None


@functools.cache
def enclosing_job() -> EnclosingJob | None:
    """The job this process runs inside, or None, looked up once per process (the gateway
    asks on every call; a walk of /proc costs milliseconds).

    Once inside, always inside: a later look (after the shim died, say) never clears it.
    Once outside, always outside: orphans are re-parented to an ancestor, so a shim never
    joins a process's ancestry later; only the process itself can set its run variables; and
    a process another one moves into a job cgroup was still started by someone else."""
    return _by_environment() or _by_cgroup() or _by_process_tree()
