"""A job's stdout or stderr, written to a private file that never grows past its cap.

The job writes into a pipe; a thread copies it to the log file (mode 0600). Past the cap the
oldest part is dropped and the newest half kept, so the end of a log, where the error is,
always survives a job that prints without end.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

CHUNK_BYTES = 65536
DEFAULT_LOG_MAX_BYTES = 64 * 2**20
JOIN_SECONDS = 2.0


def _dropped_line(dropped: int, cap: int) -> bytes:
    return f"[bunsui: {dropped} earlier bytes dropped; logs keep their last {cap} bytes]\n".encode()


class LogSink:
    """Copies one pipe into one capped log file on a background thread."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_LOG_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._read_fd, self.write_fd = os.pipe()
        self._file_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(self._file_fd, 0o600)
        self._size = 0
        self._thread = threading.Thread(target=self._copy, daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, CHUNK_BYTES)
            except OSError:
                break
            if not chunk:
                break
            os.write(self._file_fd, chunk)
            self._size += len(chunk)
            if self._size > self.max_bytes:
                self._keep_tail()
        os.close(self._file_fd)
        os.close(self._read_fd)

    def _keep_tail(self) -> None:
        """Rewrite the file as a note of what was dropped plus its newest half."""
        keep = self.max_bytes // 2
        tail = os.pread(self._file_fd, keep, self._size - keep)
        self.dropped += self._size - len(tail)
        head = _dropped_line(self.dropped, self.max_bytes)
        os.ftruncate(self._file_fd, 0)
        os.lseek(self._file_fd, 0, os.SEEK_SET)
        os.write(self._file_fd, head + tail)
        self._size = len(head) + len(tail)

    def started(self) -> None:
        """The child holds its copy of the write end now: drop ours so EOF can come."""
        os.close(self.write_fd)

    def close(self) -> None:
        """Wait for the copy to finish: every writer is gone once the job's tree is killed.
        A writer that escaped the tree only keeps this daemon thread reading."""
        self._thread.join(JOIN_SECONDS)
