"""Whether this process runs inside a job: such a process may never act as a human.

Three independent marks, any one of which is enough:
- the BUNSUI_* run variables every job gets (a job can unset them, so never alone);
- a `jobshim` among its ancestors: each job runs under its own shim, a child subreaper, so
  setsid or a double fork re-parents a process to the shim, never out of its tree;
- membership in a job cgroup (`bunsui-job-*`), which outlives even a killed shim.

The CLI server's forked commands act for the client that connected: each also judges that
client's process, which the kernel named by pidfd when it connected (`act_for`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from bunsui_core.engine import job_marks
from bunsui_core.engine.job_marks import RUN_VARIABLES


@dataclass(frozen=True)
class EnclosingJob:
    """Evidence that this process belongs to a job."""

    evidence: str
    """environment | process tree | cgroup | gone (a client that ended unidentified)"""
    detail: str


def _by_environment() -> EnclosingJob | None:
    if all(os.environ.get(name) for name in RUN_VARIABLES):
        return EnclosingJob(
            "environment",
            f"job {os.environ['BUNSUI_JOB_ID']} of session {os.environ['BUNSUI_SESSION_ID']}",
        )
    return None


def _evidence(mark: job_marks.Mark | None) -> EnclosingJob | None:
    return None if mark is None else EnclosingJob(*mark)


@functools.cache
def enclosing_job() -> EnclosingJob | None:
    """The job this process runs inside, or None, looked up once per process (the gateway
    asks on every call; a walk of /proc costs milliseconds).

    Once inside, always inside: a later look (after the shim died, say) never clears it.
    Once outside, always outside: orphans are re-parented to an ancestor, so a shim never
    joins a process's ancestry later; only the process itself can set its run variables; and
    a process another one moves into a job cgroup was still started by someone else."""
    return (
        _by_environment()
        or _evidence(job_marks.by_cgroup(None))
        or _evidence(job_marks.by_process_tree(os.getpid(), itself=False))
        or (_evidence(job_marks.of_pidfd(_client, "the calling process")) if _client else None)
    )


_client: int | None = None
"""pidfd of the client this process acts for (the CLI server's commands), else None."""


def act_for(pidfd: int) -> None:
    """Judge the process behind `pidfd` as well as this one from now on."""
    global _client  # noqa: PLW0603 - set once, in a freshly forked command
    _client = pidfd
    enclosing_job.cache_clear()
