"""Engine overhead: 200 no-op command jobs through the real LocalEngine vs the same 200
processes spawned bare, both at concurrency 8.

Why: around every process the engine writes SQLite records, opens log files, builds the
environment and puts the child in its own process group. With jobs that do nothing, that
bookkeeping is all that is left, so this is the worst case for the engine's overhead.
Target: engine wall time <= 1.3 x bare wall time (medians of alternated runs).

Run: .venv/bin/python tests/benchmarks/bench_engine_overhead.py   (exit 1 when a target is missed)
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bunsui_core.config import Settings
from bunsui_core.engine.local import LocalEngine
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.pipeline_loader import parse_pipeline_text
from bunsui_core.model.session import RunStatus, Session, SessionStatus, new_id
from bunsui_core.store.sqlite import SqliteStore

JOBS = 200
CONCURRENCY = 8
REPETITIONS = 7
TARGET_RATIO = 1.3


class BenchError(RuntimeError):
    """A run did not do what it was measured for; its timing would be meaningless."""


def noop_commands() -> dict[str, list[str]]:
    """The two no-ops, as absolute paths so neither side pays for a PATH lookup or a shim.

    `python3` on PATH may be a pyenv shim (a shell script); the running interpreter is a
    real Python 3 binary, so it stands in for `python3`.
    """
    true_path = shutil.which("true") or "/bin/true"
    return {"true": [true_path], "python3 -c pass": [sys.executable, "-c", "pass"]}


def pipeline_yaml(argv: list[str]) -> str:
    """A pipeline file with JOBS independent one-operation jobs, as a user would write it."""
    lines = [
        "name: bench-noop",
        "description: independent no-op jobs, to measure the engine's per-job overhead",
        f"max_concurrent_jobs: {CONCURRENCY}",
        "jobs:",
    ]
    for index in range(JOBS):
        lines += [
            f"  - job_id: noop-{index:03d}",
            "    operations:",
            "      - operation_id: noop",
            "        config:",
            "          operation_type: command",
            "          parameters:",
            f"            command: {json.dumps(argv)}",
            "    dependencies: []",
        ]
    return "\n".join(lines) + "\n"


def run_bare(argv: list[str], cwd: Path) -> float:
    """The floor: spawn and reap the same processes with the same concurrency, nothing else.

    Children are started like the engine starts them: in a scratch directory (like the job
    workdirs) and in a new session. The session matters under load: with the kernel's
    autogroup scheduling each session gets its own CPU share, so children left in this
    process's session would compete with whatever else runs there and the baseline would
    measure the scheduler, not the engine's bookkeeping.
    """

    def spawn(_index: int) -> int:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
            check=False,
        ).returncode

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        codes = list(pool.map(spawn, range(JOBS)))
    elapsed = time.perf_counter() - started
    failures = sum(code != 0 for code in codes)
    if failures:
        raise BenchError(f"bare baseline: {failures} of {JOBS} processes exited non-zero")
    return elapsed


def run_engine(pipeline: Pipeline, home: Path) -> float:
    """One session on a fresh home; only `LocalEngine.run` is timed (store setup is not)."""
    settings = Settings.resolve(home)
    store = SqliteStore(settings.database_path)
    try:
        version = store.register_pipeline("bench-noop", pipeline)
        session = store.create_session(
            Session(
                session_id=new_id("ses"),
                pipeline_id=version.pipeline_id,
                pipeline_version=version.version,
                pipeline_name=pipeline.name,
                status=SessionStatus.QUEUED,
            )
        )
        engine = LocalEngine(store, settings)
        started = time.perf_counter()
        final = engine.run(session.session_id)
        elapsed = time.perf_counter() - started
        if final.status is not SessionStatus.COMPLETED:
            raise BenchError(
                f"engine session {final.session_id} ended {final.status}: {final.error_summary}"
            )
        done = [
            r for r in store.list_job_runs(session.session_id) if r.status is RunStatus.COMPLETED
        ]
        if len(done) != JOBS:
            raise BenchError(
                f"engine session {final.session_id}: {len(done)} of {JOBS} jobs completed"
            )
    finally:
        store.close()
    return elapsed


def alternate(runs: dict[str, Callable[[], float]], repetitions: int) -> dict[str, list[float]]:
    """Run each measurement in turn, `repetitions` rounds, so drift hits all sides alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repetitions):
        for name, run in runs.items():
            times[name].append(run())
    return times


def measure(label: str, argv: list[str], root: Path) -> bool:
    """Warm up, alternate bare and engine runs, print the figures; True when on target."""
    pipeline = parse_pipeline_text(pipeline_yaml(argv), source=f"<bench {label}>")
    homes = itertools.count()

    def engine_run() -> float:
        return run_engine(pipeline, root / f"home-{next(homes)}")

    scratch = root / "bare-cwd"
    scratch.mkdir(parents=True, exist_ok=True)

    def bare_run() -> float:
        return run_bare(argv, scratch)

    # Warm-up (not counted): page cache, .pyc files, first SQLite file creation.
    bare_run()
    engine_run()
    times = alternate({"bare": bare_run, "engine": engine_run}, REPETITIONS)
    bare, engine = statistics.median(times["bare"]), statistics.median(times["engine"])
    ratio = engine / bare
    per_job_ms = (engine - bare) / JOBS * 1000
    ok = ratio <= TARGET_RATIO
    print(f"\n== {label}  ({' '.join(argv)})")
    print(
        f"  bare   runs: {fmt(times['bare'])}  median {bare:.3f} s  min {min(times['bare']):.3f} s"
    )
    print(
        f"  engine runs: {fmt(times['engine'])}  median {engine:.3f} s  "
        f"min {min(times['engine']):.3f} s"
    )
    print(
        f"  engine overhead: {per_job_ms:+.2f} ms wall per job "
        f"({(engine - bare) * 1000:+.0f} ms per {JOBS} jobs)"
    )
    print(
        f"  ratio engine/bare = {ratio:.2f}  (target <= {TARGET_RATIO})  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def fmt(values: list[float]) -> str:
    """Seconds, three decimals, in run order."""
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def main() -> int:
    """Both no-op commands; exit 1 when a target is missed or a run went wrong."""
    print(
        f"engine overhead: {JOBS} independent no-op jobs, concurrency {CONCURRENCY}, "
        f"{REPETITIONS} alternated repetitions (+1 warm-up), medians"
    )
    print(
        f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} (noise: other load skews both sides)"
    )
    results: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-engine-") as tmp:
        for label, argv in noop_commands().items():
            try:
                results.append(measure(label, argv, Path(tmp) / label.split()[0]))
            except BenchError as exc:
                print(f"\n== {label}: ERROR {exc}")
                results.append(False)
    print(f"\nverdict: {'all targets met' if all(results) else 'TARGET MISSED'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
