"""The runner's end of the shim server: one `jobshim --serve` per engine run clones each job's
shim, so a job costs a fork instead of a new Python interpreter (tens of milliseconds of CPU).

The clone's parent is the runner (CLONE_PARENT): it waits for the shim, reaps it and
inherits its orphans as if it had started it. Where the server cannot be used (another
architecture, it died), `start` or `spawn` fails and the caller starts a shim of its own.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from bunsui_core.engine import jobshim

STOP_SECONDS = 5.0


class ShimServer:
    """A running `jobshim --serve`; `spawn` is safe from any thread."""

    def __init__(self, sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        self._sock = sock
        self._proc = proc
        self._lock = threading.Lock()
        self.broken = False
        """Set once a spawn found the server gone: later attempts start shims directly."""

    @classmethod
    def start(cls) -> ShimServer | None:
        """A server, or None where clone(CLONE_PARENT) is not known for this machine."""
        if os.uname().machine not in jobshim.SYS_CLONE:
            return None
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [*jobshim.argv_prefix(), "--serve", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # never holds a caller's pipe open
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env={},
            )
        except OSError:
            ours.close()
            return None
        finally:
            theirs.close()
        return cls(ours, proc)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        cgroup: str | None,
        fds: tuple[int, int, int],
    ) -> int:
        """Start a job's shim with `fds` (stdout, stderr, status) and return its pid, a child
        of this process. OSError when the server is gone."""
        payload = json.dumps(
            {"argv": list(argv), "env": dict(env), "cwd": str(cwd), "cgroup": cgroup}
        ).encode()
        with self._lock:
            # MSG_NOSIGNAL: a dead server is an error here, never a SIGPIPE for the runner.
            header = [struct.pack(jobshim.HEADER, len(payload))]
            socket.send_fds(self._sock, header, list(fds), socket.MSG_NOSIGNAL)
            self._sock.sendall(payload, socket.MSG_NOSIGNAL)
            reply = self._sock.recv(4, socket.MSG_WAITALL)
        if len(reply) < 4:
            raise ConnectionError("the shim server is gone")
        (pid,) = struct.unpack("!i", reply)
        if pid <= 0:
            raise OSError(-pid, os.strerror(-pid))
        return int(pid)

    def close(self) -> None:
        """Stop the server (it exits when its socket closes) and reap it."""
        self._sock.close()
        try:
            self._proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
