"""Engine scale: a 5,000-job pipeline validates, runs (no-op jobs) and lists its jobs with
the same cost per job as a 500-job one.

Why: someone running thousands of small jobs a day must not find that ten times the jobs
costs a hundred times the time (a scan of every job per finished job, a lookup by linear
search, a filter of every operation per listed job). Each step is the real CLI command,
called in this process after a warm-up (so the interpreter's and the CLI's start-up, a
constant, neither hides nor inflates the per-job figure).
Target: for each step, (time per job at 5,000) / (time per job at 500) <= 1.3.

Run: .venv/bin/python tests/benchmarks/bench_engine_scale.py   (exit 1 when a target is missed)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bunsui_mcp.cli import main as bunsui

SIZES = (500, 5000)
CONCURRENCY = 8
REPETITIONS = 2
TARGET_RATIO = 1.3
STEPS = ("validate", "run", "list")


class BenchError(RuntimeError):
    """A command did not do what it was measured for."""


def pipeline_yaml(jobs: int) -> str:
    """Independent one-operation `true` jobs."""
    true = json.dumps([shutil.which("true") or "/bin/true"])
    lines = [f"name: scale-{jobs}", f"max_concurrent_jobs: {CONCURRENCY}", "jobs:"]
    for index in range(jobs):
        lines += [
            f"  - job_id: job-{index:05d}",
            "    operations:",
            "      - operation_id: noop",
            "        config:",
            "          operation_type: command",
            f"          parameters: {{command: {true}}}",
        ]
    return "\n".join(lines) + "\n"


def cli(home: Path, *args: str) -> tuple[float, dict[str, object]]:
    """One CLI command in this process: its wall time and its JSON output."""
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = bunsui(["--home", str(home), "--format", "json", *args])
    elapsed = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"bunsui {' '.join(args)} exited {code}: {out.getvalue()[-400:]}")
    return elapsed, json.loads(out.getvalue())


def one_round(pipeline_file: Path, home: Path, jobs: int) -> dict[str, float]:
    """validate, run --wait and job list of one pipeline on a fresh home."""
    validate, _ = cli(home, "pipeline", "validate", str(pipeline_file))
    run, session = cli(home, "pipeline", "run", str(pipeline_file), "--wait")
    listing, listed = cli(home, "job", "list", "--session-id", str(session["session_id"]))
    listed_jobs = listed["jobs"]
    if not isinstance(listed_jobs, list) or len(listed_jobs) != jobs:
        raise BenchError(f"job list showed {len(listed_jobs)} of {jobs} jobs")
    if any(job["status"] != "completed" for job in listed_jobs):
        raise BenchError("not every job completed")
    return {"validate": validate, "run": run, "list": listing}


def main() -> int:
    """Both sizes, alternated; exit 1 when a step's per-job cost grows past the target."""
    print(
        f"engine scale: {SIZES[0]} vs {SIZES[1]} independent `true` jobs, concurrency "
        f"{CONCURRENCY}, {REPETITIONS} alternated repetitions (+1 warm-up), medians"
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} (noise: other load skews every side)"
    )
    times: dict[int, dict[str, list[float]]] = {n: {s: [] for s in STEPS} for n in SIZES}
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-scale-") as tmp:
        files = {}
        for jobs in SIZES:
            files[jobs] = Path(tmp) / f"scale-{jobs}.yaml"
            files[jobs].write_text(pipeline_yaml(jobs))
        homes = iter(range(10_000))
        try:
            one_round(files[SIZES[0]], Path(tmp) / "warm-up", SIZES[0])
            for _ in range(REPETITIONS):
                for jobs in SIZES:
                    measured = one_round(files[jobs], Path(tmp) / f"h{next(homes)}", jobs)
                    for step, seconds in measured.items():
                        times[jobs][step].append(seconds)
        except BenchError as exc:
            print(f"ERROR {exc}")
            return 1
    ok = True
    small, large = SIZES
    for step in STEPS:
        per_small = statistics.median(times[small][step]) / small
        per_large = statistics.median(times[large][step]) / large
        ratio = per_large / per_small
        passed = ratio <= TARGET_RATIO
        ok = ok and passed
        print(
            f"  {step:9} {small}: {per_small * 1e6:8.0f} us/job  {large}: "
            f"{per_large * 1e6:8.0f} us/job  ratio {ratio:.2f} (target <= {TARGET_RATIO})  "
            f"{'PASS' if passed else 'FAIL'}"
        )
    print(f"\nverdict: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
