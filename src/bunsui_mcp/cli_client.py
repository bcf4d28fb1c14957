"""The `bunsui` command's fast path: hand the call to this user's warm CLI server.

A CLI call spends most of its time importing typer, pydantic and bunsui's models, the same
for every call; agents make many calls. The CLI server (`cli_server`) imports them once and
forks a copy of itself per call. This client, which imports the standard library only,
passes the server its own stdin, stdout, stderr and working directory (the descriptors
themselves), its arguments and environment, forwards the signals it receives (Ctrl-C) to
the forked command and exits with that command's exit status. The command runs as if this
process had run it: same descriptors (so the terminal, pipes and redirections), same
environment, same directory, same user.

When there is no server yet, this call runs in-process as before and then starts one in the
background (`start_missing_server`), so that the next call finds it. BUNSUI_CLI_SERVER=0
turns the server off.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys
from types import FrameType

SWITCH = "BUNSUI_CLI_SERVER"
"""Environment variable: "0" runs every call in-process and starts no server."""

IMPORT_TIME_VARIABLES = (
    "LANG",
    "FORCE_COLOR",
    "NO_COLOR",
    "PY_COLORS",
    "GITHUB_ACTIONS",
    "TERMINAL_WIDTH",
    SWITCH,
)
IMPORT_TIME_PREFIXES = ("PYTHON", "LD_", "LC_", "TYPER", "_TYPER")
"""Variables read when the interpreter starts or a library is imported (encodings, locale,
colours, the dynamic loader): the server read its own at start, so a client whose values
differ gets a server of its own (they are part of the socket's name)."""

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""Signals this client passes on to the command it waits for."""

HEADER = struct.Struct("!I")
"""Length of the request that follows the descriptors."""
ANSWER = struct.Struct("!Bi")
"""What the server sends back: (SERVED, the command's pid), or (SERVED, 0) when it will not
serve the call; then (ENDED, the command's wait status). A first answer that is not a pid
means the call never ran: it runs in-process."""
SERVED, ENDED = 1, 2
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)
"""Linux 6.5+: a pidfd of the peer, taken by the kernel when it connected (or listened)."""
MAX_SOCKET_PATH = 100
"""sun_path holds 108 bytes on Linux; longer paths get no server."""


def socket_directory() -> str:
    """Where this user's CLI servers listen: $XDG_RUNTIME_DIR, else /tmp/bunsui-UID."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        return os.path.join(runtime, "bunsui")
    return f"/tmp/bunsui-{os.getuid()}"  # noqa: S108 - checked ours and 0700 before use


def socket_path() -> str:
    """This interpreter's, this install's and these start-up variables' server socket."""
    package = os.path.dirname(os.path.abspath(__file__))
    env = sorted(
        f"{name}={value}"
        for name, value in os.environ.items()
        if name in IMPORT_TIME_VARIABLES or name.startswith(IMPORT_TIME_PREFIXES)
    )
    identity = "\0".join([sys.executable, sys.prefix, package, repr(sys.flags), *env])
    key = hashlib.sha256(identity.encode(errors="surrogateescape")).hexdigest()[:24]
    return os.path.join(socket_directory(), f"cli-{key}.sock")


def private_directory(path: str) -> bool:
    """Create the socket directory 0700, or check an existing one is ours and private: a
    directory another user made or can write would let them stand in for the server."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        facts = os.lstat(path)
    except OSError:
        return False
    import stat  # noqa: PLC0415 - cheap, and only here

    return (
        stat.S_ISDIR(facts.st_mode)
        and facts.st_uid == os.getuid()
        and stat.S_IMODE(facts.st_mode) & 0o077 == 0
    )


def run_remote(argv: list[str]) -> int | None:
    """Run `bunsui argv[1:]` in the CLI server and return its exit code; None when this call
    must run in-process (server off, not running yet, refused, or unusable here)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    path = socket_path()
    directory = os.path.dirname(path)
    if len(path) > MAX_SOCKET_PATH or not private_directory(directory):
        return None
    # Before any descriptor of ours exists: with stdin closed, the socket would be fd 0.
    present = [fd for fd in (0, 1, 2) if _is_open(fd)]
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        global _missing  # noqa: PLW0603 - one call per process
        _missing = path
        return None
    with connection:
        pid = _send_request(connection, argv, present)
        if pid is None:
            return None
        return _wait(connection, pid)


def _send_request(connection: socket.socket, argv: list[str], present: list[int]) -> int | None:
    """Send descriptors (`present`: which of stdin, stdout, stderr are open), arguments and
    environment; the pid the server forked, or None."""
    if not _trusted_server(connection):
        return None
    umask = os.umask(0o077)
    os.umask(umask)
    try:
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # a directory it may not read (or gone): in-process copes as it can
        return None
    ignored = [int(n) for n in FORWARDED if signal.getsignal(n) is signal.SIG_IGN]
    request = json.dumps(
        {
            "argv": argv,
            "env": dict(os.environ),
            "std": present,
            "umask": umask,
            "ignored": ignored,
        },
        ensure_ascii=False,
    ).encode(errors="surrogateescape")
    try:
        socket.send_fds(connection, [HEADER.pack(len(request))], [*present, cwd])
        connection.sendall(request)
        answer = _receive(connection, ANSWER.size)
    except OSError:
        return None
    finally:
        os.close(cwd)
    if answer is None:
        return None
    kind, pid = ANSWER.unpack(answer)
    return pid if kind == SERVED and pid > 0 else None


def _trusted_server(connection: socket.socket) -> bool:
    """Whether the process listening is this user's and no job's: a job's code (same user)
    could listen on the socket's path first, to read what calls carry (their descriptors,
    environment) or answer in the server's place. Its cgroups and ancestors show a job."""
    try:
        credentials = connection.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
        )
        pidfd = connection.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
    except OSError:
        return False
    try:
        if struct.unpack("3i", credentials)[1] != os.getuid():
            return False
        from bunsui_core.engine.job_marks import of_pidfd  # noqa: PLC0415 - stdlib only

        return of_pidfd(pidfd, "the CLI server") is None
    finally:
        os.close(pidfd)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _receive(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _wait(connection: socket.socket, pid: int) -> int:
    """Forward signals to the command until the server reports how it ended; end the same
    way (exit code, or the same signal)."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        try:  # noqa: SIM105 - contextlib would be one more import per call
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def suspend(_signum: int, _frame: FrameType | None) -> None:
        """Ctrl-Z: stop the command (SIGSTOP: in its own session, it would ignore a
        terminal stop), then this client as the shell expects; `fg` resumes both."""
        forward(signal.SIGSTOP, None)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        signal.signal(signal.SIGTSTP, suspend)
        forward(signal.SIGCONT, None)

    for number in FORWARDED:  # ignored ones too: the command ignores them as told
        signal.signal(number, forward)
    if signal.getsignal(signal.SIGTSTP) is not signal.SIG_IGN:
        signal.signal(signal.SIGTSTP, suspend)
    try:
        answer = _receive(connection, ANSWER.size)
    except OSError:
        answer = None
    kind, status = ANSWER.unpack(answer) if answer else (None, 0)
    if kind != ENDED:
        print("bunsui: the CLI server went away during the call", file=sys.stderr)
        return 1
    if os.WIFSIGNALED(status):
        ended_by = os.WTERMSIG(status)
        signal.signal(ended_by, signal.SIG_DFL)
        os.kill(os.getpid(), ended_by)
        return 128 + ended_by
    return os.waitstatus_to_exitcode(status)


def server_may_run() -> bool:
    """Cheap checks before starting a server: the kernel names peers by pidfd (without it
    a server never serves) and this is not a job's call (a server refuses to run inside a
    job; its own check also sees jobs that unset these variables)."""
    from bunsui_core.engine.job_marks import RUN_VARIABLES  # noqa: PLC0415 - stdlib only

    if all(os.environ.get(name) for name in RUN_VARIABLES):
        return False
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.close(left.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD))
    except OSError:
        return False
    finally:
        left.close()
        right.close()
    return True


_missing: str | None = None
"""The socket no server listened on during this call, if any."""


def start_missing_server() -> None:
    """Once the in-process call is done, start the server it did not find, detached (own
    session, stdio on /dev/null): the call's own work never shares its process with a child
    it did not ask for. Errors only mean no server; a server refuses to run inside a job."""
    if _missing is None or not server_may_run():
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "bunsui_mcp.cli_server", _missing],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)],
            setsid=True,
        )
    except OSError:
        pass
    finally:
        os.close(null)
