"""`session list --filter status=failed --limit 50` on 1M stored sessions vs on 1k, and the
claims listing (`--filter claimed=true`, what every agent's claim budget check runs).

Why: the schema promises that a listing walks one index in result order, so a page costs
the same however many sessions are stored. A missing or unused index shows up here as a
ratio that grows with the store. Both the store call and the real CLI (a subprocess, as
users and agents run it) are measured; the plan of the status query is printed too.
Target: 1M / 1k <= 1.5 for each.

Populating the 1M-session store takes minutes (15 on a loaded 2-CPU machine, 1.4 GB in a
temporary directory); `--large N` measures N sessions instead.

Run: .venv/bin/python tests/benchmarks/bench_session_list.py [--large N]   (exit 1 on a miss)
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from _installed import bunsui_executable

from bunsui_core.config import Settings
from bunsui_core.model.claims import LeaseState, claimed
from bunsui_core.model.session import RunnerInfo, Session, SessionStatus, utc_now
from bunsui_core.store.base import SessionFilter, update_session
from bunsui_core.store.sqlite import SqliteStore

SIZES = (1_000, 1_000_000)
CLAIMED = 3
"""Sessions holding a live claim in each home: claims are few, whatever the store holds."""
LIMIT = 50
STORE_CALLS = 300
CLI_REPETITIONS = 7
TARGET_RATIO = 1.5
SEED = 20240601

PIPELINES = (
    "nightly-orders-etl",
    "hourly-clickstream",
    "daily-billing",
    "weekly-reports",
    "ml-feature-refresh",
    "crm-sync",
    "inventory-snapshot",
    "log-compaction",
)
# Terminal statuses only: an active (queued/running) session without a live runner would be
# reaped (written) by the first `session list`, changing the store between measurements.
STATUS_WEIGHTS = {
    SessionStatus.COMPLETED: 82,
    SessionStatus.FAILED: 10,
    SessionStatus.CANCELLED: 5,
    SessionStatus.TIMEOUT: 3,
}
FAILED_JOBS = ("extract", "transform", "load", "validate")


@dataclass(frozen=True)
class Home:
    """A populated bunsui home and how many sessions it holds."""

    size: int
    settings: Settings


def iso(moment: datetime) -> str:
    """The store's fixed-width timestamp format (see `utc_now`)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fake_session(rng: random.Random, session_id: str, created: datetime) -> Session:
    """A finished session as the engine leaves it: runner, timings, failure fields."""
    status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    started = created + timedelta(seconds=rng.uniform(0.1, 2))
    finished = started + timedelta(seconds=rng.uniform(5, 900))
    failed = status in {SessionStatus.FAILED, SessionStatus.TIMEOUT}
    job = rng.choice(FAILED_JOBS)
    return Session(
        session_id=session_id,
        pipeline_id=rng.choice(PIPELINES),
        pipeline_version=rng.randint(1, 5),
        pipeline_name="bench pipeline",
        status=status,
        created_at=iso(created),
        updated_at=iso(finished),
        started_at=iso(started),
        finished_at=iso(finished),
        failed_jobs=[job] if failed else [],
        error_summary=(
            f"{job}/{job}-op: Command exited with code 1: ValueError: bad row "
            f"{rng.randint(1, 10**6)}"
        )
        if failed
        else None,
        runner=RunnerInfo(
            pid=rng.randint(1000, 99999),
            host="bench-host",
            started_at=iso(started),
            heartbeat_at=iso(finished),
        ),
        version=3,
    )


def column_value(session: Session, column: str) -> Any:
    """A sessions-table column for this session: `body` is its JSON, other columns mirror the
    field of the same name (so columns added by later migrations are filled like the store
    does), and columns that are no field (heartbeat_at) stay NULL."""
    if column == "body":
        return session.model_dump_json()
    lease = LeaseState.of(session)
    if column in {"claim_holder", "claim_expires_at", "escalated"}:
        return {"claim_holder": lease.holder, "claim_expires_at": lease.expires_at}.get(
            column, int(lease.escalated)
        )
    value = getattr(session, column, None)
    return value.value if isinstance(value, Enum) else value


def populate(settings: Settings, size: int) -> float:
    """Create the schema through the store, then bulk-insert rows matching it in one
    transaction (the store API commits per session: ~20 s for 100k). Returns seconds."""
    started = time.perf_counter()
    SqliteStore(settings.database_path).close()
    db = sqlite3.connect(settings.database_path, isolation_level=None)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(sessions)")]
        rng = random.Random(SEED + size)
        created = datetime.now(UTC) - timedelta(days=365)
        step = timedelta(days=365) / size
        ids: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        while len(rows) < size:
            session_id = f"ses-{rng.getrandbits(48):012x}"
            if session_id in ids:
                continue
            ids.add(session_id)
            created += step * rng.uniform(0.5, 1.5)
            session = fake_session(rng, session_id, created)
            rows.append(tuple(column_value(session, column) for column in columns))
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            f"INSERT INTO sessions ({', '.join(columns)}) "  # noqa: S608 - names from the schema
            f"VALUES ({', '.join('?' for _ in columns)})",
            rows,
        )
        db.execute("COMMIT")
    finally:
        db.close()
    store = SqliteStore(settings.database_path)
    try:
        for session_id in sorted(ids)[:CLAIMED]:  # through the store, as `session claim` does
            update_session(
                store,
                session_id,
                lambda s: claimed(
                    s,
                    actor="ai-agent",
                    instance_id="bench",
                    ttl_seconds=3600,
                    note=None,
                    now=utc_now(),
                ),
            )
    finally:
        store.close()
    with sqlite3.connect(settings.database_path) as db:
        # Fold the WAL into the main file so both stores are read the same way.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def status_query_plan(store: SqliteStore) -> tuple[str, list[str]]:
    """The exact statement `list_sessions` runs for the status filter, and SQLite's plan."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # the real SQL, not a copy that may drift
    try:
        store.list_sessions(SessionFilter(status=SessionStatus.FAILED), limit=LIMIT)
    finally:
        store._db.set_trace_callback(None)
    sql = next(s for s in statements if s.lstrip().upper().startswith("SELECT"))
    with sqlite3.connect(store.path) as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return sql, plan


def time_store_calls(
    homes: list[Home], wanted: SessionFilter, expected: int
) -> dict[int, list[float]]:
    """Per-call seconds of one store listing, the homes interleaved call by call."""
    stores = {home.size: SqliteStore(home.settings.database_path) for home in homes}
    times: dict[int, list[float]] = {size: [] for size in stores}
    try:
        for store in stores.values():  # warm-up: page cache, prepared-statement cache
            store.list_sessions(wanted, limit=LIMIT)
        for _ in range(STORE_CALLS):
            for size, store in stores.items():
                started = time.perf_counter()
                page = store.list_sessions(wanted, limit=LIMIT)
                times[size].append(time.perf_counter() - started)
                if (
                    (expected == LIMIT and page.next_cursor is None)
                    or len(page.sessions) != expected
                    or any(
                        not wanted.lease_matches(LeaseState.of(s), utc_now())
                        or (wanted.status is not None and s.status is not wanted.status)
                        for s in page.sessions
                    )
                ):
                    raise RuntimeError(f"{size} sessions: wrong page from list_sessions")
    finally:
        for store in stores.values():
            store.close()
    return times


def cli_environment(pycache: Path) -> dict[str, str]:
    """The CLI as installed: bytecode cached (in a scratch prefix, never written into src/),
    even where the shell sets PYTHONDONTWRITEBYTECODE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_cli(bunsui: str, home: Home, env: dict[str, str]) -> float:
    """Wall seconds of one `session list` subprocess; checks it printed a full failed page."""
    argv = [
        bunsui,
        "--home",
        str(home.settings.home),
        "--format",
        "json",
        "session",
        "list",
        "--filter",
        "status=failed",
        "--limit",
        str(LIMIT),
    ]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}")
    sessions = json.loads(done.stdout)["sessions"]
    if len(sessions) != LIMIT or any(s["status"] != "failed" for s in sessions):
        raise RuntimeError(f"{home.size} sessions: CLI printed a wrong page")
    return elapsed


def time_cli(homes: list[Home], pycache: Path) -> dict[int, list[float]]:
    """CLI runs alternated between the homes, after one warm-up each."""
    bunsui = bunsui_executable()
    env = cli_environment(pycache)
    for home in homes:
        run_cli(bunsui, home, env)
    times: dict[int, list[float]] = {home.size: [] for home in homes}
    for _ in range(CLI_REPETITIONS):
        for home in homes:
            times[home.size].append(run_cli(bunsui, home, env))
    return times


def verdict(label: str, times: dict[int, list[float]], unit: float, unit_name: str) -> bool:
    """Print medians of both sizes and their ratio; True when on target."""
    small, large = (statistics.median(times[size]) for size in SIZES)
    ratio = large / small
    ok = ratio <= TARGET_RATIO
    print(f"  {label}")
    for size, value in zip(SIZES, (small, large), strict=True):
        print(
            f"    {size:>7,} sessions: median {value * unit:8.3f} {unit_name}  "
            f"(min {min(times[size]) * unit:.3f}, n={len(times[size])})"
        )
    print(
        f"    ratio {SIZES[1]:,}/{SIZES[0]:,} = {ratio:.2f}  "
        f"(target <= {TARGET_RATIO})  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> int:
    """Populate both homes, print the plan, measure store calls and CLI; exit 1 on a miss."""
    global SIZES  # noqa: PLW0603 - one knob for a script
    if sys.argv[1:2] == ["--large"]:
        SIZES = (SIZES[0], int(sys.argv[2]))
    print(
        f"session list --filter status=failed --limit {LIMIT}: "
        f"{SIZES[1]:,} vs {SIZES[0]:,} stored sessions"
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; sqlite {sqlite3.sqlite_version}"
    )
    print(
        "mix: "
        + ", ".join(f"{s} {w}%" for s, w in STATUS_WEIGHTS.items())
        + f"; {len(PIPELINES)} pipelines"
    )
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-list-") as tmp:
        homes = [Home(size, Settings.resolve(Path(tmp) / f"home-{size}")) for size in SIZES]
        for home in homes:
            seconds = populate(home.settings, home.size)
            megabytes = home.settings.database_path.stat().st_size / 1e6
            print(f"populated {home.size:>7,} sessions in {seconds:.1f} s ({megabytes:.1f} MB)")

        store = SqliteStore(homes[-1].settings.database_path)
        try:
            sql, plan = status_query_plan(store)
        finally:
            store.close()
        uses_index = any("USING INDEX sessions_by_status" in step for step in plan)
        sorts = any("TEMP B-TREE" in step for step in plan)
        print(f"\nquery: {sql}")
        for step in plan:
            print(f"  plan: {step}")
        print(
            f"  uses sessions_by_status: {'yes' if uses_index else 'NO'}; "
            f"extra sort (temp b-tree): {'YES' if sorts else 'no'}"
        )

        print(
            "\n(a) store.list_sessions(SessionFilter(status=FAILED), limit=50), "
            f"{STORE_CALLS} calls per store, interleaved"
        )
        failed = time_store_calls(homes, SessionFilter(status=SessionStatus.FAILED), LIMIT)
        store_ok = verdict("per call", failed, 1000, "ms")
        print(
            f"\n(b) store.list_sessions(SessionFilter(claimed=True), limit=50): {CLAIMED} live "
            f"claims in each store, {STORE_CALLS} calls per store, interleaved"
        )
        held = time_store_calls(homes, SessionFilter(claimed=True), CLAIMED)
        store_ok = verdict("per call", held, 1000, "ms") and store_ok
        print(
            f"\n(c) bunsui --home H --format json session list --filter status=failed "
            f"--limit {LIMIT}  (subprocess, {CLI_REPETITIONS} alternated runs + warm-up)"
        )
        cli_ok = verdict("per run", time_cli(homes, Path(tmp) / "pycache"), 1000, "ms")

    ok = store_ok and cli_ok and uses_index and not sorts
    print(f"\nverdict: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
