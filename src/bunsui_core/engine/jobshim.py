"""The parent of every job command: `python -I -S .../bunsui_core/engine/jobshim.py
--status-fd N [--cgroup DIR] -- ARGV...`, or a clone of `jobshim.py --serve FD`.

It makes itself a child subreaper, so whatever the command starts stays its descendant even
after setsid or a double fork; when the command ends (or the shim gets SIGTERM) it kills and
reaps every descendant before exiting. Its own command line is what `job_identity`
recognises in a process's ancestry: a bunsui process below a shim is inside a job.

Where a C compiler exists the engine runs jobshim.c instead, which does the same for one job
without a Python interpreter (see native_shim); this module is the fallback and the model.

The engine starts it once per run as a server (`--serve FD`) and clones it for each job
attempt (see `serve`); started per attempt (where no server can be used) it still starts
cheaply: run as a file (no `-m`, no site), it imports `gc`, `os`, `signal`, `sys` and
`process_tree`, nothing else.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

if not __package__:
    # Run as a file without site: the package is found next to this file, after the stdlib.
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bunsui_core.engine.process_tree import (
    kill_descendants,
    libc,
    memory_kb,
    set_child_subreaper,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc would cost every job's start
    from collections.abc import Mapping
    from typing import Any

PATH_SUFFIX = "bunsui_core/engine/jobshim.py"
"""How a shim's command line names it, whichever install (or `python -m`) started it."""
MODULE = "bunsui_core.engine.jobshim"
NATIVE_PREFIX = "bunsui-jobshim-"
"""The file name of the native shim (jobshim.c, see native_shim), its argv[0]."""
SPAWN_FAILED_EXIT = 127


def argv_prefix() -> list[str]:
    """How the runner starts a shim: this interpreter, isolated, without site, this file."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__)]


def is_shim_command(argv: list[str]) -> bool:
    """Whether a process's argv is a job shim's: the native one by its file name, the Python
    one by its module or file (the interpreter's options come first). A job's process that
    names itself so is already below a shim: it only marks itself as inside a job."""
    if argv and os.path.basename(argv[0]).startswith(NATIVE_PREFIX):
        return True
    return any(part == MODULE or part.endswith(PATH_SUFFIX) for part in argv[1:4])


def _report(fd: int, fields: dict[str, int], lead: str = "") -> None:
    """One JSON line of integers to the runner on the status pipe."""
    os.write(
        fd, (lead + "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}\n").encode()
    )


def _start(argv: list[str], cgroup: str | None, status_fd: int, env: Mapping[str, str]) -> int:
    """Start the command (inside the job cgroup when there is one) and return its pid.

    posix_spawn, not fork: glibc starts it with vfork semantics, so a short job does not pay
    for a copy of this interpreter's page tables and the copy-on-write faults that follow.
    The shim joins the cgroup itself first, so the command is born in it (and all it forks).
    """
    os.set_inheritable(status_fd, False)
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    # posix_spawnp searches this process's PATH: make it the job's, as execvpe would.
    os.environ["PATH"] = env.get("PATH", os.defpath)
    # As subprocess does: Python ignores SIGPIPE and SIGXFSZ, a command expects defaults.
    return os.posix_spawnp(
        argv[0], argv, env, setsigdef=(signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ)
    )


def _report_spawn_error(status_fd: int, message: str) -> None:
    """Why the command could not start, as a JSON line on the status pipe."""
    import json  # noqa: PLC0415 - only a command that cannot start pays for it

    os.write(status_fd, (json.dumps({"spawn_error": message}) + "\n").encode())


def _reap_all(root: int) -> tuple[int, int]:
    """Wait for the command, then kill and reap every remaining descendant; returns the
    command's wait status and peak RSS in KiB (its own and its reaped children's).

    Once the command is reaped, every process that has ended is reaped before the tree is
    walked and swept again (a walk per reaped process made hundreds cost seconds); no child
    left means no descendant either, as orphans come back to this subreaper."""
    root_status, root_maxrss, root_done = 0, 0, False
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG if root_done else 0)
            if pid == 0:  # children left, none ended since the last sweep
                kill_descendants(os.getpid())
                pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return root_status, root_maxrss
        if pid == root:
            root_status, root_maxrss, root_done = status, usage.ru_maxrss, True


def parse(argv: list[str]) -> tuple[int, str | None, list[str]]:
    """`--status-fd N [--cgroup DIR] -- ARGV...`, as the runner writes it."""
    split = argv.index("--")
    options = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
    return int(options["--status-fd"]), options.get("--cgroup"), argv[split + 1 :]


def run_job(command: list[str], cgroup: str | None, status_fd: int, env: Mapping[str, str]) -> int:
    """Be the job's shim: subreaper of its tree, kill and reap it all, report on `status_fd`.
    Returns the shim's exit code: 0, or 127 when the command could not be started."""

    stopped = []  # a signal handler can append, not rebind

    def stop(signum: int, _frame: object) -> None:
        stopped.append(signum)
        kill_descendants(os.getpid())

    signal.signal(signal.SIGTERM, stop)
    set_child_subreaper()
    own_rss_kb, _ = memory_kb(os.getpid())
    try:
        root = _start(command, cgroup, status_fd, env)
    except OSError as exc:
        _report_spawn_error(status_fd, f"{command[0]}: {exc.strerror or exc}")
        return SPAWN_FAILED_EXIT
    if stopped:  # cancelled while the command was starting: it must not run on
        kill_descendants(os.getpid())
    status, maxrss_kb = _reap_all(root)
    # A pipe the job filled (through /proc) loses the report rather than block the shim
    # forever; on a line of its own, whatever the job wrote there cannot tear it.
    os.set_blocking(status_fd, False)
    try:
        fields = {
            "pid": root,
            "wait_status": status,
            "maxrss_kb": maxrss_kb,
            "shim_rss_kb": own_rss_kb,
        }
        _report(status_fd, fields, lead="\n")
    except OSError:
        pass
    return 0


# The shim server: `jobshim.py --serve FD`, one per engine run. Each job's shim is a clone of
# it (same command line, so `is_shim_command` knows it) made with CLONE_PARENT: its parent is
# the runner, which waits for it, reaps it and inherits its orphans exactly as if it had
# started a new interpreter, without paying for one per job.
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
CLONE_PARENT = 0x00008000
HEADER = "!I"
"""A request: this header (the JSON's length) carrying stdout, stderr and status fds, then
the JSON {argv, env, cwd, cgroup}. The reply: `!i`, the shim's pid or -errno."""


def _clone_for_parent() -> int:
    """fork(), except that the child's parent is this process's parent."""
    import ctypes  # noqa: PLC0415 - the server imports it once, before its first clone

    number = SYS_CLONE[os.uname().machine]
    pid = int(libc().syscall(number, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0))
    if pid < 0:
        raise OSError(ctypes.get_errno(), "clone(CLONE_PARENT) failed")
    return pid


def _job_child(payload: bytes, fds: list[int]) -> None:
    """In the clone: become the job's shim, with the runner's log files as stdout/stderr.
    Never returns (the clone must not go back to serving): a shim that could not start the
    command says why and exits 127, never 0. Its first word on the status pipe is its pid:
    should the server die before replying, the runner adopts this shim rather than start
    the job a second time."""
    import json  # noqa: PLC0415 - the server loaded it already

    # Every page the clone writes is copied first: a collection would write to every
    # object it visits (the server froze its heap, and this clone collects nothing).
    gc.disable()
    out, err, status_fd = fds
    code = SPAWN_FAILED_EXIT
    try:
        _report(status_fd, {"shim": os.getpid()})
        request: dict[str, Any] = json.loads(payload)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in {null, out, err} - {0, 1, 2}:
            os.close(fd)
        os.chdir(str(request["cwd"]))
        code = run_job(request["argv"], request["cgroup"], status_fd, request["env"])
    except OSError as exc:
        _report_spawn_error(status_fd, str(exc))
    finally:
        os._exit(code)


def serve(sock_fd: int) -> None:
    """Clone a shim per request until the runner closes its end of the socket."""
    import json  # noqa: F401, PLC0415 - loaded once here, not in every clone
    import socket  # noqa: PLC0415
    import struct  # noqa: PLC0415

    size = struct.calcsize(HEADER)
    libc().prctl  # noqa: B018 - each clone would otherwise build this ctypes function anew
    # Every clone shares this heap copy-on-write: frozen, no collection in the server visits
    # (and so writes to) the objects of the clones' copies.
    gc.freeze()
    with socket.socket(fileno=sock_fd) as sock:
        while True:
            header, fds, _flags, _addr = socket.recv_fds(sock, size, 3)
            if len(header) < size or len(fds) != 3:
                return
            (length,) = struct.unpack(HEADER, header)
            payload = b""
            while len(payload) < length:
                chunk = sock.recv(length - len(payload))
                if not chunk:
                    return
                payload += chunk
            try:
                pid = _clone_for_parent()
            except OSError as exc:
                pid = -(exc.errno or 5)
            if pid == 0:
                os.close(sock_fd)
                _job_child(payload, fds)
            for fd in fds:
                os.close(fd)
            sock.sendall(struct.pack("!i", pid))


def main(argv: list[str] | None = None) -> int:
    """Run one command as a job and report how it ended on the status pipe (or, with
    `--serve FD`, be the shim server)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--serve"]:
        serve(int(args[1]))
        # The runner waits for this exit when its run ends: nothing to flush (no output),
        # no interpreter teardown to wait for.
        os._exit(0)
    status_fd, cgroup, command = parse(args)
    return run_job(command, cgroup, status_fd, os.environ)


if __name__ == "__main__":
    sys.exit(main())
