"""A job's stdout or stderr, written to a private file that never grows past its cap.

The job writes into a pipe; the job monitor's one thread copies every running job's pipes
to their log files (mode 0600). Past the cap the oldest part is dropped and the newest half
kept, so the end of a log, where the error is, always survives a job that prints without end.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

CHUNK_BYTES = 65536
DEFAULT_LOG_MAX_BYTES = 64 * 2**20
JOIN_SECONDS = 2.0
TAIL_BYTES = 4096
"""How much of the end of a log an attempt's record keeps."""
LOG_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC


def _dropped_line(dropped: int, cap: int) -> bytes:
    return f"[bunsui: {dropped} earlier bytes dropped; logs keep their last {cap} bytes]\n".encode()


class LogSink:
    """One pipe and the capped log file it is copied into (by whoever reads `read_fd`)."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_LOG_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        try:
            self._file_fd = os.open(path, LOG_FLAGS, 0o600)
        except FileNotFoundError:
            # Made here, on the first log of a new directory, not checked before every log.
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._file_fd = os.open(path, LOG_FLAGS, 0o600)
        os.fchmod(self._file_fd, 0o600)
        self.read_fd, self.write_fd = os.pipe()
        self._size = 0
        self._tail = b""
        """The job's last TAIL_BYTES, kept as copied: the record's tail without a read."""
        self._done = threading.Event()

    def write(self, chunk: bytes) -> None:
        """Append what the job wrote, keeping the file under its cap. The tail takes the chunk
        first: a disk that refuses it (full, so often why the job fails) loses it from the
        file, never from the record."""
        self._tail = (self._tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
        self._size += os.write(self._file_fd, chunk)  # short on a filling disk
        if self._size > self.max_bytes:
            self._keep_tail()

    def tail(self) -> str:
        """The end of the log as text (bad UTF-8 replaced), once the copy has finished."""
        return self._tail.decode("utf-8", errors="replace")

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
        self._tail = (head + tail)[-TAIL_BYTES:]

    def finished(self) -> None:
        """Every writer is gone (EOF): close the pipe and the file."""
        os.close(self._file_fd)
        os.close(self.read_fd)
        self._done.set()

    def started(self) -> None:
        """The child holds its copy of the write end now: drop ours so EOF can come."""
        os.close(self.write_fd)

    def close(self) -> None:
        """Wait for the copy to finish: every writer is gone once the job's tree is killed.
        A writer that escaped the tree only keeps the monitor reading this pipe."""
        self._done.wait(JOIN_SECONDS)
