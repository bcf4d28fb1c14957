"""The CLI server: one warm interpreter per user and install that forks a copy per call.

Started in the background by the first `bunsui` call that finds none (`cli_client`), it
imports the CLI, every action module and the local engine once, then waits on a Unix
socket in a 0700 directory of the user's. Each connection gets a fork at once; the fork
reads the request (the server itself never waits on a client), checks who connected, and
becomes the command: the client's stdin, stdout, stderr and working directory (passed as
descriptors), its environment, umask, ignored signals and arguments, its own session. The
server waits for each fork and sends the client its wait status; a client that goes away
(killed) takes its command with it, as a killed in-process CLI would.

Refused, so the call runs in-process instead (the client falls back): a peer of another
user; a caller inside a job (its calls then run inside the job, as without a server); a
server whose code or installed packages changed since it started (it then exits; the next
call starts a fresh one); a server with a thread (fork copies only the calling one). The
server never runs inside a job, only where the kernel names peers by pidfd (SO_PEERPIDFD,
Linux 6.5), and is not dumpable. It exits after IDLE_SECONDS without calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bunsui_core.engine import process_tree as _process_tree
from bunsui_mcp.cli_client import ANSWER, ENDED, FORWARDED, HEADER, SERVED, SO_PEERPIDFD

IDLE_SECONDS = float(os.environ.get("BUNSUI_CLI_SERVER_IDLE", "900"))
"""How long the server waits for a call before it exits."""
MAX_REQUEST = 16 * 1024 * 1024
REQUEST_TIMEOUT = 5.0
"""Seconds a connected client has, in all, to send its request to its fork."""
MAX_CALLS = 64
"""Forks in flight; beyond, a call runs in-process."""
PR_SET_DUMPABLE = 4
REFUSED = 3
"""A fork's exit code when it did not serve the call (the client was told so)."""
STALE = 4
"""A fork's exit code when the installed code changed since the server started."""
STD_FDS = (0, 1, 2)


@dataclass(frozen=True)
class Request:
    """One call as the client sent it."""

    argv: list[str]
    env: dict[str, str]
    std: list[int]
    """Which of stdin, stdout, stderr the client has open (and passed, in this order)."""
    umask: int
    ignored: list[int]
    """The forwarded signals the client ignores (a background job of a script ignores
    SIGINT, `nohup` SIGHUP): the command ignores them too, as it would in-process."""
    fds: list[int]
    """The passed descriptors: `std`'s, then the working directory."""


@dataclass
class Server:
    """The listening socket and the forks in flight, by their exit pidfds."""

    path: str
    listener: socket.socket
    inode: int
    """The socket file's, as bound: removed at exit only while it is still this one."""
    code_stamp: dict[str, int]
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    calls: dict[int, tuple[int, socket.socket]] = field(default_factory=dict)
    """exit pidfd -> (pid, the client's connection)."""
    stale: bool = False

    def serve(self) -> None:
        """Accept and reap until idle for IDLE_SECONDS (or found stale). The server itself
        never reads from a client: each connection gets its fork at once, which reads the
        request, so a slow or silent client holds up nobody else."""
        self.selector.register(self.listener, selectors.EVENT_READ)
        while not self.stale or self.calls:
            events = self.selector.select(None if self.calls else IDLE_SECONDS)
            if not events:
                return
            for key, _mask in events:
                if key.fileobj is self.listener:
                    self.accept()
                else:
                    self.finished(key.fd)

    def accept(self) -> None:
        try:
            connection, _address = self.listener.accept()
        except OSError:
            return
        if self.stale or _threads() != 1 or len(self.calls) >= MAX_CALLS:
            connection.close()  # the client runs the call in-process (fork copies one thread)
            return
        try:
            pid = os.fork()
        except OSError:
            connection.close()
            return
        if pid == 0:
            self.become_command(connection)  # never returns
        try:
            exit_fd = os.pidfd_open(pid)
        except OSError:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            connection.close()
            return
        self.calls[exit_fd] = (pid, connection)
        self.selector.register(exit_fd, selectors.EVENT_READ)

    def finished(self, exit_fd: int) -> None:
        """A fork exited: its wait status to the client (which ignores it when the fork
        refused the call), then forget it. A fork that found the code changed ends the
        server: it stops listening and exits once its calls are done."""
        pid, connection = self.calls.pop(exit_fd)
        self.selector.unregister(exit_fd)
        _pid, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == STALE and not self.stale:
            self.stale = True
            self.selector.unregister(self.listener)
            self.close_listener()
        with contextlib.suppress(OSError):
            connection.sendall(ANSWER.pack(ENDED, status))
        connection.close()
        _close(exit_fd)

    def close_listener(self) -> None:
        """Stop listening, and remove the socket file if it is still this server's."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        self.listener.close()

    def become_command(self, connection: socket.socket) -> None:
        """In the fork: drop the server's descriptors, read and judge the request, take the
        client's descriptors, run the command, exit with its code. Never returns."""
        code = REFUSED
        try:
            for exit_fd, (_pid, other) in self.calls.items():
                other.close()
                _close(exit_fd)
            self.selector.close()
            self.listener.close()
            _process_tree.libc().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
            # Here, not in the server's loop: the walk (~2 ms) delays no other call.
            if _code_stamp() != self.code_stamp:
                code = STALE
                return  # unanswered: the client runs the call in-process
            request = _accepted(connection)
            if request is not None:
                code = _run_command(connection, request)
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
            code = 1
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _accepted(connection: socket.socket) -> Request | None:
    """The request, when this server serves it: the pid answered to the client. None (and 0
    answered: the client runs the call in-process) for a peer of another user, a request
    not our client's, or a caller inside a job: a job's calls run inside the job, where
    everything they start stays in its tree, as if there were no server.

    Who is inside a job is `job_identity`'s to say, as for any process: this fork takes
    the caller's environment and acts for the caller (the pidfd the kernel took at
    connect), and the answer is cached for the gateway's own check of this call."""
    from bunsui_core.engine import job_identity  # noqa: PLC0415 - preloaded

    request = None
    try:
        credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(credentials[4:8], sys.byteorder) != os.getuid():
            return None
        request = _read_request(connection)
        os.environ.clear()
        os.environ.update(request.env)
        job_identity.act_for(connection.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD))
        if job_identity.enclosing_job() is None:
            connection.sendall(ANSWER.pack(SERVED, os.getpid()))
            return request
        connection.sendall(ANSWER.pack(SERVED, 0))
    except (OSError, ValueError, TypeError):
        pass
    if request is not None:
        _close(*request.fds)
    return None


def _read_request(connection: socket.socket) -> Request:
    """The client's descriptors and request within REQUEST_TIMEOUT in all; ValueError when
    malformed (not our client's)."""
    deadline = time.monotonic() + REQUEST_TIMEOUT

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError("request too slow")
        return left

    connection.settimeout(remaining())
    header, fds, _flags, _address = socket.recv_fds(connection, HEADER.size, 4)
    try:
        if len(header) != HEADER.size:
            raise ValueError("short header")
        (length,) = HEADER.unpack(header)
        if length > MAX_REQUEST:
            raise ValueError("request too large")
        payload = bytearray()
        while len(payload) < length:
            connection.settimeout(remaining())
            chunk = connection.recv(length - len(payload))
            if not chunk:
                raise ValueError("short request")
            payload += chunk
        request = _parse(json.loads(payload.decode(errors="surrogateescape")), fds)
    except BaseException:
        _close(*fds)
        raise
    connection.settimeout(None)
    return request


def _run_command(connection: socket.socket, request: Request) -> int:
    """Become the client's command (its environment is already taken): its descriptors,
    directory, clock zone, umask, signal dispositions; then run it and exit as the console
    script would (non-daemon threads joined, atexit handlers, flushes). A client that goes
    away (killed) takes the command with it, as a killed in-process CLI would."""
    import atexit  # noqa: PLC0415 - the fork's exit only

    from bunsui_mcp.cli_main import run_in_process  # noqa: PLC0415 - preloaded

    os.setsid()
    for target in STD_FDS:
        if target not in request.std:
            _close(target)
    for target, fd in zip(request.std, request.fds, strict=False):
        os.dup2(fd, target)
    os.fchdir(request.fds[-1])
    _close(*request.fds)
    time.tzset()  # the client's TZ, read by the C library at start otherwise
    os.umask(request.umask)
    sys.argv = list(request.argv)
    _reopen_stdio(request.std)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    for ignored in request.ignored:
        signal.signal(ignored, signal.SIG_IGN)
    threading.Thread(target=_die_with_client, args=(connection,), daemon=True).start()
    try:
        code = run_in_process(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    threading_shutdown = getattr(threading, "_shutdown", None)
    if threading_shutdown is not None:
        threading_shutdown()  # non-daemon threads end first, as at a normal exit
    atexit._run_exitfuncs()
    return code


def _die_with_client(connection: socket.socket) -> None:
    """The client sends nothing after its request: an end of file means it is gone."""
    with contextlib.suppress(OSError):
        while connection.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def _reopen_stdio(std: list[int]) -> None:
    """New text streams over the client's descriptors, buffered as the interpreter would
    for them (line-buffered on a terminal); encodings are the server's, which shares the
    client's locale variables (they name its socket)."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        if fd not in std:
            setattr(sys, name, None)
            continue
        old = getattr(sys, name)
        interactive = os.isatty(fd)
        raw = os.fdopen(fd, "rb" if fd == 0 else "wb", closefd=False)
        stream = io.TextIOWrapper(
            raw,
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=interactive or fd == 2,
            write_through=fd == 2,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _parse(request: object, fds: list[int]) -> Request:
    """The request, checked: ValueError when it is not one our client sends."""
    if not isinstance(request, dict):
        raise ValueError("not an object")
    argv, env, std, umask, ignored = (
        request.get(k) for k in ("argv", "env", "std", "umask", "ignored")
    )
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv")
    if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        raise ValueError("env")
    if not (isinstance(std, list) and std == sorted(set(std)) and set(std) <= set(STD_FDS)):
        raise ValueError("std")
    if not isinstance(umask, int) or not 0 <= umask <= 0o777:
        raise ValueError("umask")
    if not (isinstance(ignored, list) and set(ignored) <= {int(n) for n in FORWARDED}):
        raise ValueError("ignored")
    if len(fds) != len(std) + 1:
        raise ValueError("descriptors")
    return Request(argv, env, std, umask, ignored, fds)


def _threads() -> int:
    """This process's threads, native ones included (a library's pool counts too)."""
    return len(os.listdir("/proc/self/task"))


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _code_stamp() -> dict[str, int]:
    """Modification times of every file of bunsui's packages and of the directory packages
    are installed in (an upgrade of any of them changes it). Taken before the imports, so
    a change made while the server imports is a change too."""
    package = Path(__file__).resolve().parent
    stamp = {str(package.parent): package.parent.stat().st_mtime_ns}
    for top in (package, package.parent / "bunsui_core"):
        for directory, subdirectories, files in os.walk(top):
            subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
            stamp[directory] = os.stat(directory).st_mtime_ns
            for name in files:
                with contextlib.suppress(OSError):
                    path = os.path.join(directory, name)
                    stamp[path] = os.stat(path).st_mtime_ns
    return stamp


def _preload() -> None:
    """Import what commands import (not boto3, mcp or numpy: those start threads or are
    for other engines and stores), with the collector off, then freeze that heap."""
    from bunsui_mcp.cli_main import import_cli  # noqa: PLC0415

    import_cli()
    gc.disable()
    try:
        from bunsui_core.actions.registry import load_actions  # noqa: PLC0415

        load_actions()
        importlib.import_module("bunsui_core.engine.local")
    finally:
        gc.freeze()
        gc.enable()


def _listen(path: str) -> socket.socket | None:
    """Bind and listen on `path`; None when another server already listens there. Servers
    started at once take turns (a lock beside the socket), so none removes the socket of
    one that bound but did not listen yet; a server that finds the lock held exits."""
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:  # never wait: another server is starting (or someone holds the lock to stall us)
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:  # none, or a dead server's socket file: take its place
            with contextlib.suppress(OSError):
                os.unlink(path)
        else:
            return None
        finally:
            probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(64)
        except OSError:
            listener.close()
            return None
        return listener
    finally:
        os.close(lock)


def main() -> int:
    """`python -m bunsui_mcp.cli_server SOCKET`: serve until idle; 0 when another server
    already serves, 1 when this one may not run here."""
    from bunsui_mcp.cli_client import private_directory, server_may_run  # noqa: PLC0415

    # Nothing of the first caller's but stdio (/dev/null) stays open here: a pipe it had
    # open would otherwise stay open for as long as the server lives, and so in every fork.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    if len(sys.argv) != 2 or not server_may_run():
        return 1
    from bunsui_core.engine.job_identity import enclosing_job  # noqa: PLC0415

    path = sys.argv[1]
    if enclosing_job() is not None or not private_directory(os.path.dirname(path)):
        return 1
    os.umask(0o077)
    stamp = _code_stamp()
    listener = _listen(path)  # before the imports: clients that come meanwhile wait in line
    if listener is None:
        return 0
    _preload()
    # Not dumpable: another process of this user (a job's code) may not ptrace the server
    # or copy its listening socket (pidfd_getfd); each fork turns it back on for itself.
    _process_tree.libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    server = Server(path, listener, os.stat(path).st_ino, stamp)
    try:
        server.serve()
    finally:
        if not server.stale:
            server.close_listener()
    return 0


if __name__ == "__main__":
    sys.exit(main())
