"""`insight list --pipeline P` over a pipeline with 10,000 recorded runs vs listing those runs.

Why: insights are recomputed from the store on every call (no daemon), so their cost must
not grow with the history: they read the newest window of runs through the by-pipeline
index, then each of those sessions' own job and operation runs. Listing the same 10,000
runs (`session list --pipeline P`, every page) is the baseline a user would otherwise
page through. Both run through the gateway in process, as the CLI and MCP adapters do.
Target: insight list under one second on the embedded store (ratio printed alongside).

Run: .venv/bin/python tests/benchmarks/bench_insights.py   (exit 1 when the target is missed)
"""

from __future__ import annotations

import getpass
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import (
    JobRun,
    OperationAttempt,
    OperationRun,
    RunStatus,
    Session,
    SessionStatus,
)
from bunsui_core.store.sqlite import SqliteStore

RUNS = 10_000
REPETITIONS = 7
TARGET_SECONDS = 1.0
SEED = 20261129
PIPELINE = "nightly-orders-etl"
JOBS = {  # job -> (dependencies, memory limit MiB, typical peak MiB, typical seconds)
    "extract": ([], 512, 60.0, 40.0),
    "transform": (["extract"], 1024, 700.0, 300.0),
    "load": (["transform"], 256, 80.0, 20.0),
}


def iso(moment: datetime) -> str:
    """The store's fixed-width timestamp format."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pipeline_document() -> dict:
    return {
        "name": PIPELINE,
        "jobs": [
            {
                "job_id": job_id,
                "dependencies": deps,
                "operations": [
                    {
                        "operation_id": f"{job_id}-op",
                        "config": {
                            "operation_type": "command",
                            "timeout_seconds": 900,
                            "parameters": {"command": ["true"], "memory": limit},
                        },
                    }
                ],
            }
            for job_id, (deps, limit, _, _) in JOBS.items()
        ],
    }


def populate(settings: Settings) -> float:
    """Write RUNS hourly sessions with their job and operation runs; returns seconds taken."""
    rng = random.Random(SEED)
    started = time.perf_counter()
    store = SqliteStore(settings.database_path)
    store.register_pipeline(PIPELINE, validate_pipeline_data(pipeline_document()))
    begin = datetime(2025, 11, 1, tzinfo=UTC)
    for n in range(RUNS):
        created = begin + timedelta(hours=n)
        session_id = f"ses-{n:012x}"
        clock = created
        for job_id, (_, limit, peak, seconds) in JOBS.items():
            elapsed = seconds * rng.uniform(0.8, 1.2)
            finished = clock + timedelta(seconds=elapsed)
            store.put_operation_run(
                OperationRun(
                    session_id=session_id,
                    job_id=job_id,
                    operation_id=f"{job_id}-op",
                    status=RunStatus.COMPLETED,
                    attempts=[
                        OperationAttempt(
                            attempt=1,
                            status=RunStatus.COMPLETED,
                            started_at=iso(clock),
                            finished_at=iso(finished),
                            peak_rss_mb=peak * rng.uniform(0.9, 1.1) + n * 0.01,
                            memory_limit_mb=limit,
                            timeout_seconds=900,
                            elapsed_seconds=elapsed,
                        )
                    ],
                )
            )
            store.put_job_run(
                JobRun(
                    session_id=session_id,
                    job_id=job_id,
                    status=RunStatus.COMPLETED,
                    started_at=iso(clock),
                    finished_at=iso(finished),
                )
            )
            clock = finished
        store.create_session(
            Session(
                session_id=session_id,
                pipeline_id=PIPELINE,
                pipeline_version=1,
                status=SessionStatus.COMPLETED,
                created_at=iso(created),
                started_at=iso(created),
                finished_at=iso(clock),
            )
        )
    store.close()
    return time.perf_counter() - started


def timed(call) -> list[float]:
    """Seconds per call, after one warm-up call."""
    call()
    samples = []
    for _ in range(REPETITIONS):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="bunsui-bench-insights-"))
    try:
        settings = Settings.resolve(home)
        print(f"populating {RUNS} runs of {PIPELINE} ({len(JOBS)} jobs each) ...", flush=True)
        print(f"  {populate(settings):.1f} s")
        gateway = Gateway(settings)
        actor = getpass.getuser()

        def insights() -> int:
            result = gateway.invoke(actor, "insight:list", {"pipeline": PIPELINE})
            return len(result.model_dump()["insights"])

        def list_runs() -> int:
            total, cursor = 0, None
            while True:
                args = {"filter": {"pipeline_id": PIPELINE}, "limit": 1000}
                if cursor:
                    args["cursor"] = cursor
                page = gateway.invoke(actor, "session:list", args).model_dump()
                total += len(page["sessions"])
                cursor = page["next_cursor"]
                if not cursor:
                    return total

        assert list_runs() == RUNS
        found = insights()
        insight_times = timed(insights)
        listing_times = timed(list_runs)
        insight_p50 = statistics.median(insight_times)
        listing_p50 = statistics.median(listing_times)
        print(f"insight list   ({found} insights): p50 {insight_p50 * 1000:8.1f} ms")
        print(f"session list   (all {RUNS} runs):  p50 {listing_p50 * 1000:8.1f} ms")
        print(f"ratio insight/list: {insight_p50 / listing_p50:.2f}")
        verdict = "pass" if insight_p50 < TARGET_SECONDS else "MISS"
        print(f"target insight list < {TARGET_SECONDS:.1f} s: {verdict}")
        return 0 if verdict == "pass" else 1
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
