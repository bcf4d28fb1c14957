"""A real HTTP webhook receiver on 127.0.0.1 for notification tests: records every POST and
answers with scripted statuses, or hangs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """What arrived, and how to answer next (statuses are used in order, then 200)."""

    def __init__(self, statuses: list[int] | None = None, hang_seconds: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.hang_seconds = hang_seconds
        self.requests: list[tuple[str, dict[str, Any]]] = []
        """(path, JSON body) of every POST, including the ones answered with an error."""
        self.url = ""
        self.released = threading.Event()

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far."""
        return [body for _, body in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The bodies once at least `count` arrived (fails the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, self.requests
        return self.bodies()


@contextmanager
def receiver(statuses: list[int] | None = None, hang_seconds: float = 0.0) -> Iterator[Receiver]:
    """Serve a Receiver on a free loopback port for the duration of the block."""
    state = Receiver(statuses, hang_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append((self.path, json.loads(self.rfile.read(length) or b"{}")))
            if state.hang_seconds:
                state.released.wait(state.hang_seconds)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            """Quiet: pytest shows what matters."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()
