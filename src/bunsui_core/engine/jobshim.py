"""The parent of every job command: `python -I -m bunsui_core.engine.jobshim --status-fd N
[--cgroup DIR] -- ARGV...`.

It makes itself a child subreaper, so whatever the command starts stays its descendant even
after setsid or a double fork; when the command ends (or the shim gets SIGTERM) it kills and
reaps every descendant before exiting. Its own command line is what `job_identity`
recognises in a process's ancestry: a bunsui process below a shim is inside a job.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from types import FrameType

from bunsui_core.engine.process_tree import kill_descendants, rss_kb, set_child_subreaper

MODULE = "bunsui_core.engine.jobshim"
SPAWN_FAILED_EXIT = 127


def _report(fd: int, fields: dict[str, object]) -> None:
    """One JSON line to the runner on the status pipe."""
    os.write(fd, (json.dumps(fields) + "\n").encode())


def _start(argv: list[str], cgroup: str | None, status_fd: int) -> int:
    """Fork the command (inside the job cgroup when there is one) and return its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.set_inheritable(status_fd, False)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
                procs.write(str(os.getpid()))
        os.execvp(argv[0], argv)  # noqa: S606 - the pipeline's argv, never through a shell
    except OSError as exc:
        _report(status_fd, {"spawn_error": f"{argv[0]}: {exc.strerror or exc}"})
    finally:
        os._exit(SPAWN_FAILED_EXIT)


def _reap_all(root: int) -> tuple[int, int]:
    """Wait for the command, then kill and reap every remaining descendant; returns the
    command's wait status and peak RSS in KiB (its own and its reaped children's)."""
    root_status, root_maxrss = 0, 0
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            if kill_descendants(os.getpid()) == 0:
                return root_status, root_maxrss
            continue
        if pid == root:
            root_status, root_maxrss = status, usage.ru_maxrss
            kill_descendants(os.getpid())


def main(argv: list[str] | None = None) -> int:
    """Run one command as a job and report how it ended on the status pipe."""
    parser = argparse.ArgumentParser(prog="bunsui-jobshim")
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("--cgroup")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    def stop(_signum: int, _frame: FrameType | None) -> None:
        kill_descendants(os.getpid())

    signal.signal(signal.SIGTERM, stop)
    subreaper = set_child_subreaper()
    own_rss_kb = rss_kb(os.getpid())
    root = _start(command, args.cgroup, args.status_fd)
    status, maxrss_kb = _reap_all(root)
    _report(
        args.status_fd,
        {
            "pid": root,
            "wait_status": status,
            "maxrss_kb": maxrss_kb,
            "shim_rss_kb": own_rss_kb,
            "subreaper": subreaper,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
