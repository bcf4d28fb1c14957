"""One thread watches every running job of this process: it copies each job's stdout and
stderr pipes into their capped logs, samples each job's process tree for resident memory
(the peak it reports and, without a cgroup, the watchdog that OOM-kills it) and kills a job
whose timeout passed.

Profiled, threads per attempt (two log copies, a sampler, a timeout timer) cost more of the
runner's CPU than a short job itself; one selector loop does the same for all of them.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable

from bunsui_core.engine.log_sink import CHUNK_BYTES, LogSink
from bunsui_core.engine.process_tree import descendants, kill_descendants, memory_kb

SAMPLE_SECONDS = 0.05


class WatchedTree:
    """The process tree below one job's shim, as the monitor sees it while the job runs.

    The sum over the tree is what a container's memory usage is; the highest per-process
    VmHWM catches a spike between two samples. With a watchdog limit, a sum past the limit
    kills the tree: the attempt is an OOM kill.
    """

    def __init__(
        self,
        shim: int,
        *,
        watchdog_limit_kb: int | None,
        timeout_seconds: float | None,
        on_timeout: Callable[[], None],
    ) -> None:
        self.shim = shim
        self.watchdog_limit_kb = watchdog_limit_kb
        self.peak_kb = 0
        self.oom_killed = False
        self.timed_out = False
        self.seen: dict[int, int] = {}
        """pid -> start time of every process seen in the tree, to kill stragglers later."""
        now = time.monotonic()
        # First look after one period: a job over by then has wait4's figure, and a /proc
        # walk per short job would be most of the engine's per-job cost.
        self.next_sample = now + SAMPLE_SECONDS
        self.deadline = now + timeout_seconds if timeout_seconds else None
        self._on_timeout = on_timeout

    def due(self) -> float:
        """When the monitor must look at this tree next (monotonic seconds)."""
        if self.deadline is None or self.timed_out:
            return self.next_sample
        return min(self.next_sample, self.deadline)

    def check(self, now: float) -> None:
        """Kill the job at its timeout; sample its tree once a period."""
        if self.deadline is not None and now >= self.deadline and not self.timed_out:
            self.timed_out = True
            self._on_timeout()
        if now >= self.next_sample:
            self.sample()
            self.next_sample = now + SAMPLE_SECONDS

    def sample(self) -> None:
        """One look at the tree."""
        total = 0
        for proc in descendants(self.shim):
            if proc.state in {"Z", "X"}:
                continue
            self.seen.setdefault(proc.pid, proc.start_ticks)
            rss, hwm = memory_kb(proc.pid)
            total += rss
            self.peak_kb = max(self.peak_kb, hwm)
        self.peak_kb = max(self.peak_kb, total)
        if self.watchdog_limit_kb and total >= self.watchdog_limit_kb and not self.oom_killed:
            self.oom_killed = True
            kill_descendants(self.shim)


class JobMonitor:
    """The process's one log pump, memory sampler and timeout clock (a daemon thread)."""

    _shared: JobMonitor | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> JobMonitor:
        """The monitor of this process, started on first use."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def _forget_after_fork(cls) -> None:
        """A forked child has no monitor thread: it starts its own on first use."""
        cls._shared, cls._shared_lock = None, threading.Lock()

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        """Held while trees are looked at: once `unwatch` returns, a tree's figures are final."""
        self._trees: list[WatchedTree] = []
        self._new_sinks: list[LogSink] = []
        self._thread = threading.Thread(target=self._run, name="bunsui-job-monitor", daemon=True)
        self._thread.start()

    def watch(self, tree: WatchedTree, *sinks: LogSink) -> None:
        """Sample this tree and time it out until `unwatch`; copy these pipes into their
        logs until every writer is gone."""
        with self._lock:
            self._trees.append(tree)
            self._new_sinks.extend(sinks)
        self._wake()

    def unwatch(self, tree: WatchedTree) -> None:
        """Stop looking at the tree (its shim exited); no sample of it is under way after."""
        with self._lock:
            self._trees.remove(tree)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
            os.write(self._wake_write, b"\0")

    def _timeout(self) -> float | None:
        """Seconds until the next tree is due; None (sleep until woken) when none is."""
        with self._lock:
            if not self._trees:
                return None
            due = min(tree.due() for tree in self._trees)
        return max(0.0, due - time.monotonic())

    def _run(self) -> None:
        while True:
            for key, _events in self._selector.select(self._timeout()):
                sink: LogSink | None = key.data
                if sink is None:
                    os.read(self._wake_read, CHUNK_BYTES)
                    self._register_new()
                    continue
                try:
                    chunk = os.read(key.fd, CHUNK_BYTES)
                except OSError:
                    chunk = b""
                if chunk:
                    # A full or failing disk loses this chunk, never the job.
                    with contextlib.suppress(OSError):
                        sink.write(chunk)
                else:
                    self._selector.unregister(key.fd)
                    sink.finished()
            self._check_trees()

    def _register_new(self) -> None:
        with self._lock:
            sinks, self._new_sinks = self._new_sinks, []
        for sink in sinks:
            self._selector.register(sink.read_fd, selectors.EVENT_READ, sink)

    def _check_trees(self) -> None:
        now = time.monotonic()
        with self._lock:
            for tree in self._trees:
                if tree.due() <= now:
                    try:
                        tree.check(now)
                    except Exception:
                        # One tree's failure (no thread left for a kill's grace timer, say)
                        # must not stop every job's logs and clock.
                        tree.next_sample = now + SAMPLE_SECONDS


os.register_at_fork(after_in_child=JobMonitor._forget_after_fork)
