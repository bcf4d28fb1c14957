"""The CLI server: one warm interpreter per user and install that forks a copy per call.

Started in the background by the first `bunsui` call that finds none (`cli_client`), it
imports the CLI, every action module and the local engine once, then waits on a Unix
socket in a 0700 directory of the user's. Per call it checks who connected, forks, and the
fork becomes the command: the client's stdin, stdout, stderr and working directory (passed
as descriptors), its environment, umask and arguments, its own session. The server waits
for each fork and sends the client its wait status; a client that goes away (killed) takes
its command with it, as a killed in-process CLI would.

Refused, so the call runs in-process instead (the client falls back): a peer of another
user; a kernel that cannot name the peer by pidfd (SO_PEERPIDFD, Linux 6.5); a server whose
code or installed packages changed since it started (it then exits; the next call starts a
fresh one); a server with a thread (fork copies only the calling one). The server never
runs inside a job, and a forked command judges its client as well as itself before acting
as a human (`job_identity.act_for`). It exits after IDLE_SECONDS without calls.
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
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bunsui_mcp.cli_client import HEADER, SO_PEERPIDFD, STATUS

IDLE_SECONDS = float(os.environ.get("BUNSUI_CLI_SERVER_IDLE", "900"))
"""How long the server waits for a call before it exits."""
MAX_REQUEST = 16 * 1024 * 1024
REQUEST_TIMEOUT = 5.0
"""Seconds a connected client has to send its request (one stuck client never holds the
others up for longer)."""
STD_FDS = (0, 1, 2)


@dataclass(frozen=True)
class Request:
    """One call as the client sent it."""

    argv: list[str]
    env: dict[str, str]
    std: list[int]
    """Which of stdin, stdout, stderr the client has open (and passed, in this order)."""
    umask: int
    fds: list[int]
    """The passed descriptors: `std`'s, then the working directory."""


@dataclass
class Call:
    """A forked command the server waits for, and the client waiting for its status."""

    pid: int
    exit_fd: int
    """pidfd of the command: readable once it exits."""
    connection: socket.socket
    peer_fd: int


@dataclass
class Server:
    """The listening socket and the calls in flight."""

    path: str
    listener: socket.socket
    inode: int
    """The socket file's, as bound: removed at exit only while it is still this one."""
    code_stamp: dict[str, int]
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    calls: dict[int, Call] = field(default_factory=dict)
    """By the command's exit pidfd and by its client connection's fd."""
    stale: bool = False

    def serve(self) -> None:
        """Accept and reap until idle for IDLE_SECONDS (or found stale)."""
        self.selector.register(self.listener, selectors.EVENT_READ)
        while not self.stale or self.calls:
            events = self.selector.select(None if self.calls else IDLE_SECONDS)
            if not events:
                return
            for key, _mask in events:
                if key.fileobj is self.listener:
                    self.accept()
                elif isinstance(key.fileobj, int):
                    self.finished(key.fileobj)
                else:
                    self.client_gone(key.fd)

    def accept(self) -> None:
        try:
            connection, _address = self.listener.accept()
        except OSError:
            return
        peer_fd = -1
        try:
            peer_fd = connection.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
            request = self.read_request(connection)
        except (OSError, ValueError, TypeError):
            connection.close()
            _close(peer_fd)
            return
        if self.refuses():
            with contextlib.suppress(OSError):
                connection.sendall(STATUS.pack(0))
            connection.close()
            _close(peer_fd, *request.fds)
            return
        self.fork(connection, peer_fd, request)

    def read_request(self, connection: socket.socket) -> Request:
        """The client's descriptors and request; ValueError when malformed (not ours)."""
        uid = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(uid[4:8], sys.byteorder) != os.getuid():
            raise ValueError("another user")
        connection.settimeout(REQUEST_TIMEOUT)
        header, fds, _flags, _address = socket.recv_fds(connection, HEADER.size, 4)
        try:
            if len(header) != HEADER.size:
                raise ValueError("short header")
            (length,) = HEADER.unpack(header)
            if length > MAX_REQUEST:
                raise ValueError("request too large")
            payload = bytearray()
            while len(payload) < length:
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

    def refuses(self) -> bool:
        """Stale code (then the server stops taking calls) or a thread started somewhere."""
        if _code_stamp() != self.code_stamp:
            self.stale = True
            self.selector.unregister(self.listener)
            self.close_listener()
        return self.stale or _threads() != 1

    def fork(self, connection: socket.socket, peer_fd: int, request: Request) -> None:
        try:
            pid = os.fork()
        except OSError:
            connection.close()
            _close(peer_fd, *request.fds)
            return
        if pid == 0:
            self.become_command(connection, peer_fd, request)  # never returns
        _close(*request.fds)
        try:
            exit_fd = os.pidfd_open(pid)
            connection.sendall(STATUS.pack(pid))
        except OSError:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            connection.close()
            _close(peer_fd)
            return
        call = Call(pid, exit_fd, connection, peer_fd)
        self.calls[exit_fd] = call
        self.calls[connection.fileno()] = call
        self.selector.register(exit_fd, selectors.EVENT_READ)
        self.selector.register(connection, selectors.EVENT_READ)

    def finished(self, exit_fd: int) -> None:
        """The command exited: its status to the client."""
        call = self.calls[exit_fd]
        _pid, status = os.waitpid(call.pid, 0)
        with contextlib.suppress(OSError):
            call.connection.sendall(STATUS.pack(status))
        self.forget(call)

    def client_gone(self, connection_fd: int) -> None:
        """The client closed its end (it never sends after its request): it was killed, so
        its command is killed too; its exit is reaped by `finished`."""
        call = self.calls[connection_fd]
        with contextlib.suppress(ProcessLookupError):
            os.kill(call.pid, signal.SIGKILL)
        self.selector.unregister(call.connection)
        del self.calls[connection_fd]

    def forget(self, call: Call) -> None:
        self.selector.unregister(call.exit_fd)
        self.calls.pop(call.exit_fd, None)
        if self.calls.pop(call.connection.fileno(), None) is not None:
            self.selector.unregister(call.connection)
        call.connection.close()
        _close(call.exit_fd, call.peer_fd)

    def close_listener(self) -> None:
        """Stop listening, and remove the socket file if it is still this server's."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        self.listener.close()

    def become_command(self, connection: socket.socket, peer_fd: int, request: Request) -> None:
        """In the fork: drop the server's descriptors, take the client's, run the command,
        exit with its code. Never returns."""
        code = 1
        try:
            for call in {id(c): c for c in self.calls.values()}.values():
                call.connection.close()
                _close(call.exit_fd, call.peer_fd)
            self.selector.close()
            self.listener.close()
            connection.close()
            code = _run_command(peer_fd, request)
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _run_command(peer_fd: int, request: Request) -> int:
    """Become the client's command: its descriptors, directory, environment; then run it
    and exit as the console script would (atexit handlers, flushes)."""
    import atexit  # noqa: PLC0415 - the fork's exit only

    from bunsui_core.engine import job_identity  # noqa: PLC0415 - preloaded
    from bunsui_mcp.cli_main import run_in_process  # noqa: PLC0415 - preloaded

    os.setsid()
    for target in STD_FDS:
        if target not in request.std:
            _close(target)
    for target, fd in zip(request.std, request.fds, strict=False):
        os.dup2(fd, target)
    os.fchdir(request.fds[-1])
    _close(*request.fds)
    os.environ.clear()
    os.environ.update(request.env)
    os.umask(request.umask)
    sys.argv = list(request.argv)
    _reopen_stdio(request.std)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    job_identity.act_for(peer_fd)
    try:
        code = run_in_process(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    threading_shutdown = getattr(threading, "_shutdown", None)
    if threading_shutdown is not None:
        threading_shutdown()  # non-daemon threads end first, as at a normal exit
    atexit._run_exitfuncs()
    return code


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
    argv, env, std, umask = (request.get(k) for k in ("argv", "env", "std", "umask"))
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv")
    if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        raise ValueError("env")
    if not (isinstance(std, list) and std == sorted(set(std)) and set(std) <= set(STD_FDS)):
        raise ValueError("std")
    if not isinstance(umask, int) or not 0 <= umask <= 0o777:
        raise ValueError("umask")
    if len(fds) != len(std) + 1:
        raise ValueError("descriptors")
    return Request(argv, env, std, umask, fds)


def _threads() -> int:
    """This process's threads, native ones included (a library's pool counts too)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


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
    one that bound but did not listen yet."""
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
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
    server = Server(path, listener, os.stat(path).st_ino, stamp)
    try:
        server.serve()
    finally:
        if not server.stale:
            server.close_listener()
    return 0


if __name__ == "__main__":
    sys.exit(main())
