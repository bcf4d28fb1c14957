"""The parent of every job command: `python -I -S .../bunsui_core/engine/jobshim.py
--status-fd N [--cgroup DIR] -- ARGV...`.

It makes itself a child subreaper, so whatever the command starts stays its descendant even
after setsid or a double fork; when the command ends (or the shim gets SIGTERM) it kills and
reaps every descendant before exiting. Its own command line is what `job_identity`
recognises in a process's ancestry: a bunsui process below a shim is inside a job.

It starts once per job attempt, so it starts cheaply: run as a file (no `-m`, no site), it
imports the standard library's `os`, `signal`, `sys` and `process_tree`, nothing else.
"""

from __future__ import annotations

import os
import signal
import sys

if not __package__:
    # Run as a file without site: the package is found next to this file, after the stdlib.
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bunsui_core.engine.process_tree import (
    kill_descendants,
    memory_kb,
    set_child_subreaper,
)

PATH_SUFFIX = "bunsui_core/engine/jobshim.py"
"""How a shim's command line names it, whichever install (or `python -m`) started it."""
MODULE = "bunsui_core.engine.jobshim"
SPAWN_FAILED_EXIT = 127


def argv_prefix() -> list[str]:
    """How the runner starts a shim: this interpreter, isolated, without site, this file."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__)]


def is_shim_command(argv: list[str]) -> bool:
    """Whether a process's argv is a job shim's (the interpreter's options come first)."""
    return any(part == MODULE or part.endswith(PATH_SUFFIX) for part in argv[1:4])


def _report(fd: int, fields: dict[str, int]) -> None:
    """One JSON line of integers to the runner on the status pipe."""
    os.write(fd, ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}\n").encode())


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
        import json  # noqa: PLC0415 - only a command that cannot start pays for it

        error = json.dumps({"spawn_error": f"{argv[0]}: {exc.strerror or exc}"})
        os.write(status_fd, (error + "\n").encode())
    finally:
        os._exit(SPAWN_FAILED_EXIT)


def _has_children() -> bool:
    """Whether any child is left; with none there is no descendant either, as orphans come
    back to this subreaper (the fast path: most commands leave nothing, no /proc scan)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _reap_all(root: int) -> tuple[int, int]:
    """Wait for the command, then kill and reap every remaining descendant; returns the
    command's wait status and peak RSS in KiB (its own and its reaped children's)."""
    root_status, root_maxrss, root_done = 0, 0, False
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return root_status, root_maxrss
        if pid == root:
            root_status, root_maxrss, root_done = status, usage.ru_maxrss, True
        if root_done and _has_children():
            kill_descendants(os.getpid())


def parse(argv: list[str]) -> tuple[int, str | None, list[str]]:
    """`--status-fd N [--cgroup DIR] -- ARGV...`, as the runner writes it."""
    split = argv.index("--")
    options = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
    return int(options["--status-fd"]), options.get("--cgroup"), argv[split + 1 :]


def main(argv: list[str] | None = None) -> int:
    """Run one command as a job and report how it ended on the status pipe."""
    status_fd, cgroup, command = parse(sys.argv[1:] if argv is None else argv)

    def stop(_signum: int, _frame: object) -> None:
        kill_descendants(os.getpid())

    signal.signal(signal.SIGTERM, stop)
    set_child_subreaper()
    own_rss_kb, _ = memory_kb(os.getpid())
    root = _start(command, cgroup, status_fd)
    status, maxrss_kb = _reap_all(root)
    _report(
        status_fd,
        {"pid": root, "wait_status": status, "maxrss_kb": maxrss_kb, "shim_rss_kb": own_rss_kb},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
