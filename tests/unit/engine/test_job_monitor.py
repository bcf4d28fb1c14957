"""One monitor thread copies every running job's logs, samples its memory and times it out:
an attempt costs no thread of its own beyond the caller's (profiled: per-attempt threads cost
more runner CPU than a short job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bunsui_core.engine._process import (
    DEFAULT_LOG_MAX_BYTES,
    LiveProcessGroups,
    ProcessSpec,
    run_process,
)
from bunsui_core.engine.job_monitor import WatchedTree

JOBS = 6
# Prints, then holds its pipes open long enough for the count below; the sampler looks at it.
SCRIPT = "import sys, time\nprint('job', sys.argv[1], flush=True)\ntime.sleep(0.6)\n"


def _spec(
    tmp_path: Path,
    index: int,
    timeout: float | None = None,
    *,
    argv: list[str] | None = None,
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
) -> ProcessSpec:
    """Attempt `index` logging under tmp_path; SCRIPT unless another argv is given."""
    return ProcessSpec(
        argv or [sys.executable, "-c", SCRIPT, str(index)],
        dict(os.environ),
        tmp_path,
        tmp_path / f"{index}.out",
        tmp_path / f"{index}.err",
        timeout_seconds=timeout,
        label="monitor-test",
        log_max_bytes=log_max_bytes,
    )


def test_concurrent_attempts_share_one_monitor_thread(tmp_path, job_shim):
    """Six attempts at once run on six caller threads plus one monitor, each still gets its
    own complete log and a sampled peak."""
    live = LiveProcessGroups()
    before = threading.active_count()
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        futures = [
            pool.submit(run_process, _spec(tmp_path, i), live, shims=job_shim) for i in range(JOBS)
        ]
        time.sleep(0.4)
        during = threading.active_count()
        results = [f.result() for f in futures]
    # The pool's threads, and at most the monitor if this is the first attempt in the process.
    assert during - before <= JOBS + 1
    for index, result in enumerate(results):
        assert result.succeeded
        assert (tmp_path / f"{index}.out").read_text() == f"job {index}\n"
        assert result.peak_rss_mb is not None
        assert result.peak_rss_mb > 0


def test_timeouts_of_concurrent_attempts_fire_each_at_its_own_time(tmp_path, job_shim):
    """The monitor's clock kills only the attempt whose timeout passed."""
    live = LiveProcessGroups()
    with ThreadPoolExecutor(max_workers=2) as pool:
        short = pool.submit(run_process, _spec(tmp_path, 0, timeout=0.2), live, shims=job_shim)
        long = pool.submit(run_process, _spec(tmp_path, 1, timeout=30), live, shims=job_shim)
        timed_out, finished = short.result(), long.result()
    assert timed_out.timed_out
    assert not timed_out.succeeded
    assert finished.succeeded
    assert not finished.timed_out


def test_a_forked_child_runs_jobs_with_a_monitor_of_its_own(tmp_path):
    """The monitor thread does not survive fork(): a child that runs attempts after its
    parent did still gets its logs copied (else it would wait on a pump that is not there)."""
    run_process(_spec(tmp_path, 0), LiveProcessGroups())  # the parent's monitor exists now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        result = run_process(_spec(tmp_path, 1), LiveProcessGroups())
        os._exit(0 if result.succeeded else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "1.out").read_text() == "job 1\n"


def test_a_failing_look_at_one_tree_does_not_stop_the_monitor(tmp_path, monkeypatch):
    """The monitor serves every job of the process: an error while sampling one job's tree
    skips that sample; that job and the next still get their logs and finish."""
    calls = []

    def broken_sample(self: WatchedTree) -> None:
        calls.append(self.shim)
        raise RuntimeError("a /proc surprise")

    monkeypatch.setattr(WatchedTree, "sample", broken_sample)
    first = run_process(_spec(tmp_path, 0), LiveProcessGroups())
    monkeypatch.undo()
    second = run_process(_spec(tmp_path, 1), LiveProcessGroups())
    assert calls
    assert first.succeeded
    assert second.succeeded
    assert (tmp_path / "0.out").read_text() == "job 0\n"
    assert (tmp_path / "1.out").read_text() == "job 1\n"


def test_jobs_flooding_their_logs_do_not_delay_another_jobs_timeout(tmp_path, job_shim):
    """One thread serves every job: two jobs writing as fast as they can (past their log cap)
    still leave the monitor time to kill a third at its own timeout, and keep their logs
    under the cap."""

    def spec(index: int, argv: list[str], timeout: float) -> ProcessSpec:
        return _spec(tmp_path, index, timeout, argv=argv, log_max_bytes=1 << 20)

    live = LiveProcessGroups()
    with ThreadPoolExecutor(max_workers=3) as pool:
        floods = [
            pool.submit(run_process, spec(0, ["yes", "x" * 200], 4), live, shims=job_shim),
            pool.submit(run_process, spec(1, ["sh", "-c", "yes y >&2"], 4), live, shims=job_shim),
        ]
        sleeper = pool.submit(run_process, spec(2, ["sleep", "30"], 0.5), live, shims=job_shim)
        sleeper = sleeper.result()
        flooded = [f.result() for f in floods]
    assert sleeper.timed_out
    assert sleeper.elapsed_seconds < 2.5
    assert all(r.timed_out for r in flooded)
    assert 0 < (tmp_path / "0.out").stat().st_size <= 1 << 20
    assert 0 < (tmp_path / "1.err").stat().st_size <= 1 << 20


# Run as the runner under a file-size limit: the kernel refuses every log byte past 8 KiB
# (EFBIG, as a full disk refuses them with ENOSPC) while the job writes 200 KiB.
FULL_DISK_RUNNER = """
import json, os, resource, sys
from pathlib import Path
from bunsui_core.engine._process import (
    DEFAULT_LOG_MAX_BYTES,
    LiveProcessGroups,
    ProcessSpec,
    run_process,
)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
tmp = Path(sys.argv[1])
job = (
    "import sys\\nfor i in range(4000): print('x' * 40, i)\\n"
    "print('OSError: [Errno 28] No space left on device', file=sys.stderr)\\nsys.exit(1)"
)
spec = ProcessSpec([sys.executable, "-c", job], dict(os.environ), tmp, tmp / "out", tmp / "err")
result = run_process(spec, LiveProcessGroups())
print(json.dumps([result.exit_code, result.stdout_tail, result.stderr_tail]))
"""


def test_a_log_the_disk_refuses_still_leaves_the_jobs_last_words_on_record(tmp_path):
    """Past 8 KiB the log files take no more bytes (a full disk): the job still ends with its
    exit code, and the attempt's tails hold what it wrote last, its error included, not the
    file's stale end (on a full disk that error is often why the job failed)."""
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_RUNNER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    exit_code, stdout_tail, stderr_tail = json.loads(done.stdout)
    assert exit_code == 1
    assert (tmp_path / "out").stat().st_size <= 8192
    assert stdout_tail.endswith(f"{'x' * 40} 3999\n")
    assert stderr_tail == "OSError: [Errno 28] No space left on device\n"


def test_logs_in_a_directory_not_made_yet_go_into_a_private_one(tmp_path):
    """An attempt whose log directory does not exist yet (the engine makes a job's, other
    callers may not) still logs: the directory is made private (0700), its logs 0600."""
    spec = ProcessSpec(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"],
        dict(os.environ),
        tmp_path,
        tmp_path / "new" / "deeper" / "1.out",
        tmp_path / "new" / "deeper" / "1.err",
        label="monitor-test",
    )
    result = run_process(spec, LiveProcessGroups())
    assert result.succeeded
    assert (result.stdout_tail, result.stderr_tail) == ("out\n", "err\n")
    assert spec.stdout_path.read_text() == "out\n"
    assert spec.stderr_path.read_text() == "err\n"
    assert (tmp_path / "new" / "deeper").stat().st_mode & 0o777 == 0o700
    assert spec.stdout_path.stat().st_mode & 0o777 == 0o600
