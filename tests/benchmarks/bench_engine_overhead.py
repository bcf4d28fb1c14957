"""Engine overhead: `bunsui pipeline run --wait` of 200 independent no-op jobs at concurrency 8
vs a bare Python process running the same commands in an 8-thread pool, whole processes.

Why: someone choosing bunsui for thousands of small jobs pays, per job, for what the engine
does around the process (its shim, SQLite records, log files, environment) and, per run, for
the CLI's start. With jobs that do nothing that is all that is left: the worst case.
Targets (medians of alternated runs): `sleep 0.02` jobs <= 1.3x bare, `true` jobs <= 1.5x.
It also times `LocalEngine.run` in-process against the same pool in-process: the difference
per job is the engine's own per-job overhead, without the interpreter's and the CLI's start;
and it counts the CPU both spend per job (this process and its reaped children: the engine's
job shims and shim server, the pool's commands), which other load on a shared machine
disturbs far less than wall time.

The engine runs each job under the native (C) shim where `cc` exists, else under the Python
shim server (BUNSUI_NATIVE_SHIM=0 forces the latter); `--shim both` (the default) measures
the two side by side, alternated with the bare pool, each with its own ratios.

`bunsui process` is a served call (the CLI server runs it in a fork of a warm interpreter, as
every call but a user's first); `bunsui process, CLI in-process` is that first call
(BUNSUI_CLI_SERVER=0), measured with the first shim. The bench runs its own server in a
private runtime directory and stops it at the end.

Run: .venv/bin/python tests/benchmarks/bench_engine_overhead.py [--shim native|python|both]
(exit 1 when a target is missed by every shim measured)
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _cli_server
from _installed import BenchError, bunsui_executable

from bunsui_core.config import Settings
from bunsui_core.engine.local import LocalEngine
from bunsui_core.engine.native_shim import SWITCH
from bunsui_core.engine.native_shim import load as load_native_shim
from bunsui_core.model.pipeline_loader import parse_pipeline_text
from bunsui_core.model.session import Session, SessionStatus, new_id
from bunsui_core.store.sqlite import SqliteStore

JOBS = 200
CONCURRENCY = 8
REPETITIONS = 3
TARGETS = {"sleep 0.02": 1.3, "true": 1.5}
SHIMS = {"native": "1", "python": "0"}
"""BUNSUI_NATIVE_SHIM for each shim measured."""

# The floor: the same commands, the same concurrency, nothing else; started like the engine
# starts them (in a new session: with autogroup scheduling each session gets its own CPU
# share, so children left in the bench's session would measure the scheduler, not bunsui).
BARE_POOL = """
import subprocess, sys, json
from concurrent.futures import ThreadPoolExecutor
argv, jobs, workers = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def spawn(_):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True).returncode
with ThreadPoolExecutor(max_workers=workers) as pool:
    codes = list(pool.map(spawn, range(jobs)))
sys.exit(1 if any(codes) else 0)
"""


def workloads() -> dict[str, list[str]]:
    """The issue's two no-ops, as absolute paths so no side pays for a PATH lookup."""
    return {
        "sleep 0.02": [shutil.which("sleep") or "/bin/sleep", "0.02"],
        "true": [shutil.which("true") or "/bin/true"],
    }


def pipeline_yaml(argv: list[str], jobs: int = JOBS) -> str:
    """A pipeline file with independent one-operation jobs, as a user would write it."""
    lines = [
        "name: bench-noop",
        "description: independent no-op jobs, to measure the engine's per-job overhead",
        f"max_concurrent_jobs: {CONCURRENCY}",
        "jobs:",
    ]
    for index in range(jobs):
        lines += [
            f"  - job_id: noop-{index:05d}",
            "    operations:",
            "      - operation_id: noop",
            "        config:",
            "          operation_type: command",
            "          parameters:",
            f"            command: {json.dumps(argv)}",
        ]
    return "\n".join(lines) + "\n"


def completed_jobs(home: Path) -> int:
    """Jobs recorded completed in the home's store (checked after the timed part)."""
    path = Settings.resolve(home).database_path
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT body FROM job_runs").fetchall()
    return sum(json.loads(row[0]).get("status") == "completed" for row in rows)


def timed(argv: list[str]) -> float:
    """Wall time of one whole process; it must exit 0."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{argv[:4]} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def cpu_seconds() -> float:
    """CPU used so far by this process and its reaped children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def in_process_pool(argv: list[str], cpu: list[float]) -> float:
    """The bare pool inside this process (no interpreter start); its CPU goes to `cpu`."""

    def spawn(_index: int) -> int:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        ).returncode

    started, cpu_before = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        codes = list(pool.map(spawn, range(JOBS)))
    elapsed = time.perf_counter() - started
    cpu.append(cpu_seconds() - cpu_before)
    if any(codes):
        raise BenchError("bare in-process pool: a process exited non-zero")
    return elapsed


def in_process_engine(pipeline_file: Path, home: Path, cpu: list[float]) -> float:
    """`LocalEngine.run` alone on a fresh home (store setup and registration not timed); its
    CPU goes to `cpu`."""
    settings = Settings.resolve(home)
    store = SqliteStore(settings.database_path)
    try:
        pipeline = parse_pipeline_text(pipeline_file.read_text(), source=str(pipeline_file))
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
        started, cpu_before = time.perf_counter(), cpu_seconds()
        final = LocalEngine(store, settings).run(session.session_id)
        elapsed = time.perf_counter() - started
        cpu.append(cpu_seconds() - cpu_before)
    finally:
        store.close()
    if final.status is not SessionStatus.COMPLETED or completed_jobs(home) != JOBS:
        raise BenchError(f"in-process engine session ended {final.status}")
    return elapsed


def alternate(runs: dict[str, Callable[[], float]], repetitions: int) -> dict[str, list[float]]:
    """Run each measurement in turn, `repetitions` rounds, so drift hits all sides alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repetitions):
        for name, run in runs.items():
            times[name].append(run())
    return times


def fmt(values: list[float]) -> str:
    """Seconds, three decimals, in run order."""
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def with_variable(name: str, value: str, run: Callable[[], float]) -> Callable[[], float]:
    """`run` with one more environment variable (in this process and those it starts)."""

    def wrapped() -> float:
        os.environ[name] = value
        try:
            return run()
        finally:
            del os.environ[name]

    return wrapped


def under_shim(shim: str, run: Callable[[], float]) -> Callable[[], float]:
    """`run` with the engine (in this process and in the CLI it starts) using `shim`."""
    return with_variable(SWITCH, SHIMS[shim], run)


def measure(label: str, argv: list[str], root: Path, shims: list[str]) -> bool:
    """Warm up, alternate the runs (the bare pool and each shim), print the figures; True
    when some shim is on target."""
    root.mkdir(parents=True)
    pipeline_file = root / "pipeline.yaml"
    pipeline_file.write_text(pipeline_yaml(argv))
    homes = itertools.count()
    bunsui = bunsui_executable()

    def cli_run() -> float:
        home = root / f"home-{next(homes)}"
        elapsed = timed(
            [bunsui, "--home", str(home), "pipeline", "run", str(pipeline_file), "--wait"]
        )
        if completed_jobs(home) != JOBS:
            raise BenchError(f"`pipeline run --wait` in {home}: not every job completed")
        return elapsed

    def bare_run() -> float:
        return timed(
            [sys.executable, "-c", BARE_POOL, json.dumps(argv), str(JOBS), str(CONCURRENCY)]
        )

    cpu: dict[str, list[float]] = {name: [] for name in ["bare", *shims]}
    runs: dict[str, Callable[[], float]] = {
        "bare process": bare_run,
        "bare in-process": lambda: in_process_pool(argv, cpu["bare"]),
    }
    runs["bunsui process, CLI in-process"] = under_shim(
        shims[0], with_variable("BUNSUI_CLI_SERVER", "0", cli_run)
    )
    for shim in shims:
        runs[f"bunsui process, {shim}"] = under_shim(shim, cli_run)
        runs[f"engine in-process, {shim}"] = under_shim(
            shim,
            lambda shim=shim: in_process_engine(
                pipeline_file, root / f"home-{next(homes)}", cpu[shim]
            ),
        )
    for run in runs.values():  # warm-up, not counted: page cache, .pyc files, the compile
        run()
    for values in cpu.values():
        del values[:]
    times = alternate(runs, REPETITIONS)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n== {label}  ({' '.join(argv)})")
    for name, values in times.items():
        print(f"  {name:26} {fmt(values)}  median {medians[name]:.3f} s")
    target = TARGETS[label]
    bare_cpu_us = statistics.median(cpu["bare"]) / JOBS * 1e6
    met = False
    for shim in shims:
        ratio = medians[f"bunsui process, {shim}"] / medians["bare process"]
        engine = medians[f"engine in-process, {shim}"]
        per_job_us = (engine - medians["bare in-process"]) / JOBS * 1e6
        whole_us = (medians[f"bunsui process, {shim}"] - medians["bare process"]) / JOBS * 1e6
        engine_cpu_us = statistics.median(cpu[shim]) / JOBS * 1e6
        met = met or ratio <= target
        print(f"  -- {shim} shim")
        print(f"  engine per-job overhead (in-process, wall): {per_job_us:+.0f} us")
        print(f"  whole-process overhead per job (incl. CLI start): {whole_us:+.0f} us")
        print(
            f"  CPU per job (in-process, with children): engine {engine_cpu_us:.0f} us, "
            f"bare {bare_cpu_us:.0f} us, ratio {engine_cpu_us / bare_cpu_us:.2f}"
        )
        print(f"  in-process ratio engine/bare = {engine / medians['bare in-process']:.2f}")
        print(
            f"  ratio bunsui/bare = {ratio:.2f}  (target <= {target})  "
            f"{'PASS' if ratio <= target else 'FAIL'}"
        )
    first_call = medians["bunsui process, CLI in-process"] / medians["bare process"]
    print(f"  a user's first call (CLI in-process, {shims[0]} shim): ratio {first_call:.2f}")
    return met


def main() -> int:
    """Both workloads; exit 1 when a target is missed or a run went wrong."""
    print(
        f"engine overhead: {JOBS} independent no-op jobs, concurrency {CONCURRENCY}, "
        f"{REPETITIONS} alternated repetitions (+1 warm-up), medians"
    )
    print(
        f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} (noise: other load skews every side)"
    )
    wanted = sys.argv[sys.argv.index("--shim") + 1] if "--shim" in sys.argv else "both"
    shims = list(SHIMS) if wanted == "both" else [wanted]
    if "native" in shims and load_native_shim() is None:
        print("the native shim is not available here (no cc, or BUNSUI_NATIVE_SHIM=0)")
        shims.remove("native")
    if not shims:
        return 1
    print(f"shims measured: {', '.join(shims)}")
    results: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-engine-") as tmp:
        runtime = Path(tmp) / "run"
        os.environ.update(_cli_server.private(dict(os.environ), runtime))
        try:
            _cli_server.start(bunsui_executable(), dict(os.environ))
            for label, argv in workloads().items():
                try:
                    results.append(measure(label, argv, Path(tmp) / label.split()[0], shims))
                except BenchError as exc:
                    print(f"\n== {label}: ERROR {exc}")
                    results.append(False)
        finally:
            _cli_server.stop(str(runtime))
    print(f"\nverdict: {'all targets met' if all(results) else 'TARGET MISSED'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
