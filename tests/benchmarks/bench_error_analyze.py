"""`error:analyze` of a failed session with 100 errors, on 100k stored past errors vs on 1k.

Why: for every error the analysis looks up past errors with the same fingerprint, what was
tried against them, and the learned totals per action (for the fingerprint and the error
code). Each lookup should walk one index to a bounded answer, so an analysis costs about the
same however much history is stored. A missing index, or a lookup whose answer grows with
the history, shows up here as a ratio that grows with the store. The measured call is the
real gateway action; every SELECT it issues is traced, planned and timed on both stores.
Target: 100k / 1k <= 2 (medians of interleaved runs).

Run: .venv/bin/python tests/benchmarks/bench_error_analyze.py   (exit 1 when the target is missed)
"""

from __future__ import annotations

import getpass
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_session_list import Home, fake_session, iso, populate

from bunsui_core.actions import ActionContext, Gateway
from bunsui_core.config import Settings
from bunsui_core.diagnosis.analyzer import SessionAnalysis
from bunsui_core.diagnosis.classifier import Classification, classify
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.recovery import Outcome, Resolution, ResolutionSource
from bunsui_core.model.session import ErrorRecord, FailureKind, SessionStatus
from bunsui_core.store.sqlite import SqliteStore

SIZES = (1_000, 100_000)
"""Past errors in each store; as many resolutions, and as many sessions (bench_session_list)."""
ANALYZED_ERRORS = 100
RECURRING_SHARE = 0.2
"""Past errors that are one of the analyzed session's recurring failures; the rest are not."""
NOVEL_SHARE = 0.2
"""Analyzed errors seen nowhere before (no similar errors, no fingerprint statistics)."""
MANUAL_SHARE = 0.05
"""Resolutions recorded by a person (`error learn`, keyed by error code) instead of a rerun."""
REPETITIONS = 31
TARGET_RATIO = 2.0
SEED = 20240602
ACTOR = getpass.getuser()  # an operator under the shipped policy
PIPELINE_ID = "nightly-orders-etl"
JOB_MEMORY_MB = {"extract": 512, "transform": 1024, "load": 512, "validate": 256}
JOB_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Template:
    """A failure as the engine records it; `{...}` fields vary between runs. Templates of
    one `family` classify alike (the catalog matches only the exception they share)."""

    job_id: str
    kind: FailureKind
    text: str
    family: str = ""

    @property
    def classified_as(self) -> str:
        """Key for classifying once per family rather than once per fingerprint."""
        return self.family or self.text


RECURRING = (
    Template(
        "transform",
        FailureKind.KILLED_BY_SIGNAL,
        "Command was killed by signal SIGKILL{limits}\n"
        "MemoryError: Unable to allocate {n} MiB for an array with shape ({m},)",
    ),
    Template(
        "extract",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nbotocore.exceptions.ClientError: An error "
        "occurred (ThrottlingException) when calling the GetRecords operation (reached max "
        "retries: {r}): Rate exceeded",
    ),
    Template(
        "load",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nConnectionResetError: [Errno 104] Connection "
        "reset by peer",
    ),
    Template(
        "extract",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nurllib3.exceptions.ReadTimeoutError: "
        "HTTPSConnectionPool(host='orders.internal', port=443): Read timed out. "
        "(read timeout={r})",
    ),
    Template(
        "extract",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nbotocore.errorfactory.NoSuchKey: An error "
        "occurred (NoSuchKey) when calling the GetObject operation: The specified key does "
        "not exist. Key: '/raw/orders/{n}.parquet'",
    ),
    Template(
        "transform",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nKeyError: 'customer_id'",
    ),
    Template(
        "load",
        FailureKind.TIMEOUT,
        "Command timed out after {timeout} seconds and was killed{limits}",
    ),
    Template(
        "validate",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\njsonschema.exceptions.ValidationError: "
        "'{n}' is not of type 'integer'",
    ),
    Template(
        "load",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nsocket.gaierror: [Errno -3] Temporary failure "
        "in name resolution",
    ),
    Template(
        "transform",
        FailureKind.EXIT_NONZERO,
        "Command exited with code 1{limits}\nUnicodeDecodeError: 'utf-8' codec can't decode "
        "byte 0x{h:02x} in position {n}: invalid start byte",
    ),
)
# Words (unlike numbers, ids, paths and quoted values) survive fingerprinting, so their
# combinations make thousands of distinct unrelated failures, some with catalog codes.
EXCEPTIONS = (
    "ValueError",
    "RuntimeError",
    "TypeError",
    "AssertionError",
    "ZeroDivisionError",
    "ProgrammingError",
    "IntegrityError",
    "OperationalError",
    "ThrottlingException",
    "AccessDeniedException",
    "ReadTimeoutError",
    "ConnectionRefusedError",
)
VERBS = ("reading", "writing", "merging", "deduplicating", "partitioning", "casting", "joining")
TABLES = (
    *("orders", "customers", "invoices", "payments", "refunds", "shipments", "carriers"),
    *("warehouses", "products", "prices", "discounts", "coupons", "sessions", "clicks"),
    *("impressions", "campaigns", "accounts", "contacts", "leads", "tickets", "agents"),
    *("subscriptions", "plans", "usage", "events", "ledgers", "balances", "transfers"),
)
JOBS = tuple(JOB_MEMORY_MB)


def pipeline_data() -> dict[str, Any]:
    """extract -> transform -> load -> validate, each a command with memory and a timeout."""
    jobs = []
    previous: list[str] = []
    for job_id, memory in JOB_MEMORY_MB.items():
        jobs.append(
            {
                "job_id": job_id,
                "operations": [
                    {
                        "operation_id": f"{job_id}-op",
                        "config": {
                            "operation_type": "command",
                            "timeout_seconds": JOB_TIMEOUT_SECONDS,
                            "parameters": {
                                "command": ["python", "-m", f"etl.{job_id}"],
                                "memory": memory,
                                "batch_size": 5000,
                            },
                        },
                    }
                ],
                "dependencies": previous,
            }
        )
        previous = [job_id]
    return {"name": "nightly orders etl", "jobs": jobs}


def unrelated_template(rng: random.Random) -> Template:
    """A one-off or rarely repeated failure, unrelated to the analyzed session."""
    exception = rng.choice(EXCEPTIONS)
    return Template(
        rng.choice(JOBS),
        FailureKind.EXIT_NONZERO,
        f"Command exited with code {{code}}{{limits}}\n{exception}: failed "
        f"{rng.choice(VERBS)} {rng.choice(TABLES)} into {rng.choice(TABLES)} "
        f"(batch {{n}})",
        family=exception,
    )


def novel_template(i: int) -> Template:
    """A failure of the analyzed session seen in no other session (no word in TABLES)."""
    return Template(
        JOBS[i % len(JOBS)],
        FailureKind.EXIT_NONZERO,
        f"Command exited with code {{code}}{{limits}}\n{EXCEPTIONS[i]}: unexpected payload "
        "from the partner feed",
    )


def make_error(
    rng: random.Random,
    template: Template,
    session_id: str,
    moment: datetime,
    attempt: int,
    *,
    taken: set[str],
) -> ErrorRecord:
    """An ErrorRecord as the engine writes it for one failed attempt (facts in `context`)."""
    limit = JOB_MEMORY_MB[template.job_id]
    killed = template.kind is FailureKind.KILLED_BY_SIGNAL
    peak = round(limit * rng.uniform(1.0, 1.1) if killed else limit * rng.uniform(0.2, 0.9), 1)
    text = template.text.format(
        limits=f" (memory limit {limit} MiB, peak RSS {peak} MiB)",
        n=rng.randint(1, 10**6),
        m=rng.randint(10**5, 10**7),
        r=rng.randint(3, 30),
        h=rng.randint(128, 255),
        code=rng.choice((1, 2, 70)),
        timeout=JOB_TIMEOUT_SECONDS,
    )
    facts: dict[str, Any] = {"signal": 9, "signal_name": "SIGKILL"} if killed else {}
    if template.kind is FailureKind.EXIT_NONZERO:
        facts["exit_code"] = 1
    error_id = f"err-{rng.getrandbits(48):012x}"
    while error_id in taken:
        error_id = f"err-{rng.getrandbits(48):012x}"
    taken.add(error_id)
    return ErrorRecord(
        error_id=error_id,
        session_id=session_id,
        job_id=template.job_id,
        operation_id=f"{template.job_id}-op",
        attempt=attempt,
        kind=template.kind,
        message=text,
        timestamp=iso(moment),
        context={
            **facts,
            "peak_rss_mb": peak,
            "memory_limit_mb": limit,
            "timeout_seconds": JOB_TIMEOUT_SECONDS,
            "elapsed_seconds": JOB_TIMEOUT_SECONDS
            if template.kind is FailureKind.TIMEOUT
            else round(rng.uniform(5, 600), 2),
            "command": ["python", "-m", f"etl.{template.job_id}"],
        },
    )


def past_errors(
    db: sqlite3.Connection, size: int, error_ids: set[str]
) -> list[tuple[ErrorRecord, Template]]:
    """`size` errors spread over the stored failed sessions in time order: RECURRING_SHARE of
    them recurring failures of the analyzed session, the rest unrelated."""
    rng = random.Random(SEED + size)
    failed = db.execute(
        "SELECT session_id, created_at FROM sessions WHERE status IN ('failed', 'timeout') "
        "ORDER BY created_at, session_id"
    ).fetchall()
    errors = []
    for i in range(size):
        session_id, created_at = failed[i * len(failed) // size]
        template = (
            rng.choice(RECURRING) if rng.random() < RECURRING_SHARE else unrelated_template(rng)
        )
        moment = datetime.fromisoformat(created_at) + timedelta(seconds=rng.uniform(5, 900))
        error = make_error(rng, template, session_id, moment, rng.randint(1, 3), taken=error_ids)
        errors.append((error, template))
    return errors


def past_resolutions(
    errors: list[tuple[ErrorRecord, Template]], size: int
) -> tuple[list[Resolution], dict[tuple[str, str, str], list[int]]]:
    """`size` outcomes of catalog actions tried against random past errors (success as likely
    as the prior says), in time order, and the running totals the store keeps with them."""
    rng = random.Random(SEED - size)
    classified: dict[str, Classification] = {}
    resolutions = []
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _ in range(size):
        error, template = rng.choice(errors)
        if template.classified_as not in classified:
            facts = {k: v for k, v in error.context.items() if isinstance(v, int | float | str)}
            classified[template.classified_as] = classify(
                error.message, kind=error.kind, run_context=facts
            )
        found = classified[template.classified_as]
        prior = rng.choices(found.priors, weights=[p.prior for p in found.priors])[0]
        success = rng.random() < prior.prior
        manual = rng.random() < MANUAL_SHARE
        recorded = datetime.fromisoformat(error.timestamp) + timedelta(minutes=rng.uniform(5, 600))
        resolution = Resolution(
            resolution_id=f"res-{rng.getrandbits(48):012x}",
            fingerprint=f"code:{found.error_code}" if manual else error.fingerprint,
            error_code=found.error_code,
            action=prior.action.value,
            outcome=Outcome.SUCCESS if success else Outcome.FAILURE,
            source=ResolutionSource.MANUAL if manual else ResolutionSource.RERUN,
            error_id=None if manual else error.error_id,
            session_id=None if manual else f"ses-{rng.getrandbits(48):012x}",
            actor="ops-oncall" if manual else None,
            recorded_at=iso(recorded),
        )
        resolutions.append(resolution)
        for key in (("fingerprint", resolution.fingerprint), ("error_code", found.error_code)):
            totals[(*key, resolution.action)][0 if success else 1] += 1
    resolutions.sort(key=lambda r: r.recorded_at)
    return resolutions, totals


def bulk_insert_history(settings: Settings, size: int) -> tuple[set[str], int]:
    """Past errors, resolutions and action totals in one transaction, matching what
    `add_error` / `add_resolution` write. Returns the past fingerprints and #resolutions."""
    db = sqlite3.connect(settings.database_path, isolation_level=None)
    try:
        error_ids: set[str] = set()
        errors = past_errors(db, size, error_ids)
        resolutions, totals = past_resolutions(errors, size)
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO errors (error_id, session_id, fingerprint, body) VALUES (?, ?, ?, ?)",
            [(e.error_id, e.session_id, e.fingerprint, e.model_dump_json()) for e, _ in errors],
        )
        db.executemany(
            "INSERT INTO resolutions (resolution_id, fingerprint, error_code, error_id, body) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (r.resolution_id, r.fingerprint, r.error_code, r.error_id, r.model_dump_json())
                for r in resolutions
            ],
        )
        db.executemany(
            "INSERT INTO action_stats VALUES (?, ?, ?, ?, ?)",
            [(*key, s, f) for key, (s, f) in totals.items()],
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return {e.fingerprint for e, _ in errors}, len(resolutions)


def add_analyzed_session(settings: Settings) -> tuple[str, list[ErrorRecord]]:
    """The failed session to analyze, through the store API: the same 100 errors (same seed)
    in both homes, recorded after all the history."""
    rng = random.Random(SEED)
    store = SqliteStore(settings.database_path)
    try:
        version = store.register_pipeline(PIPELINE_ID, validate_pipeline_data(pipeline_data()))
        novel = [novel_template(i) for i in range(10)]
        now = datetime.now(UTC)
        session_id = f"ses-{rng.getrandbits(48):012x}"
        attempts: Counter[str] = Counter()
        errors = []
        for i in range(ANALYZED_ERRORS):
            template = rng.choice(novel if rng.random() < NOVEL_SHARE else RECURRING)
            attempts[template.job_id] += 1
            moment = now - timedelta(hours=2) + timedelta(seconds=60 * i)
            errors.append(
                make_error(
                    rng, template, session_id, moment, attempts[template.job_id], taken=set()
                )
            )
        base = fake_session(rng, session_id, now - timedelta(hours=2, seconds=5))
        store.create_session(
            base.model_copy(
                update={
                    "pipeline_id": version.pipeline_id,
                    "pipeline_version": version.version,
                    "pipeline_name": "nightly orders etl",
                    "status": SessionStatus.FAILED,
                    "failed_jobs": sorted(attempts),
                    "error_summary": errors[-1].message.splitlines()[-1],
                }
            )
        )
        for error in errors:
            store.add_error(error)
    finally:
        store.close()
    return session_id, errors


def analyze(gateway: Gateway, session_id: str) -> SessionAnalysis:
    """The measured call: the real action through the gateway, as every adapter calls it."""
    result = gateway.invoke(ACTOR, "error:analyze", {"session_id": session_id})
    if not isinstance(result, SessionAnalysis) or len(result.errors) != ANALYZED_ERRORS:
        raise RuntimeError(f"{session_id}: error:analyze did not analyze {ANALYZED_ERRORS}")
    return result


def hits(analysis: SessionAnalysis) -> str:
    """How much of the analysis rests on stored history (so the lookups found data)."""
    similar = sum(1 for e in analysis.errors if e.similar_errors)
    with_past_fix = sum(1 for e in analysis.errors if any(s.resolutions for s in e.similar_errors))
    bases = Counter(s.basis.observed_for for e in analysis.errors for s in e.recovery_suggestions)
    return (
        f"{similar}/{len(analysis.errors)} errors with similar past errors "
        f"({with_past_fix} with past resolutions); suggestion confidences observed for "
        + ", ".join(f"{k}: {v}" for k, v in sorted(bases.items()))
    )


def shape(sql: str) -> str:
    """A traced statement with its literals replaced, to group repeated lookups."""
    return re.sub(r"'(?:[^']|'')*'|\b\d+\b", "?", " ".join(sql.split()))


def traced_statements(home: Home, session_id: str) -> list[str]:
    """Every SELECT the action's handler issues on this home, in order (the real SQL)."""
    gateway = Gateway(home.settings)
    action = gateway.action("error:analyze")
    store = SqliteStore(home.settings.database_path)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        context = ActionContext(settings=home.settings, actor=ACTOR, _store=store)
        action.handler(context, action.input_model.model_validate({"session_id": session_id}))
    finally:
        store._db.set_trace_callback(None)
        store.close()
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def sql_profile(home: Home, statements: list[str]) -> dict[str, tuple[int, int, float]]:
    """Per statement shape: calls, rows returned and seconds, replaying the traced SQL
    (best of 3) on a separate connection: the database's share of one analysis."""
    profile: dict[str, tuple[int, int, float]] = {}
    with sqlite3.connect(home.settings.database_path) as db:
        for sql in statements:  # warm-up
            db.execute(sql).fetchall()
        best: dict[str, float] = {}
        rows: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        for replay in range(3):
            spent: Counter[str] = Counter()
            for sql in statements:
                started = time.perf_counter()
                found = db.execute(sql).fetchall()
                spent[shape(sql)] += time.perf_counter() - started
                if replay == 0:
                    rows[shape(sql)] += len(found)
                    calls[shape(sql)] += 1
            for key, seconds in spent.items():
                best[key] = min(best.get(key, seconds), seconds)
        for key in calls:
            profile[key] = (calls[key], rows[key], best[key])
    return profile


def print_plans(home: Home, statements: list[str]) -> bool:
    """EXPLAIN QUERY PLAN of one instance per shape; True when none scans a whole table or
    index (a temp b-tree sorting an already bounded answer is shown, not failed)."""
    first: dict[str, str] = {}
    for sql in statements:
        first.setdefault(shape(sql), sql)
    ok = True
    with sqlite3.connect(home.settings.database_path) as db:
        for key, sql in first.items():
            plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
            scans = [step for step in plan if step.startswith("SCAN")]
            ok = ok and not scans
            print(f"  {key}")
            for step in plan:
                print(f"    plan: {step}{'   <-- full scan' if step in scans else ''}")
    return ok


def print_profiles(homes: list[Home], session_id: str) -> None:
    """The traced SQL of one analysis, replayed on both stores: calls, rows, time; marks
    lookups whose answer grows with the history (indexed or not, they cost more per row)."""
    profiles = {home.size: sql_profile(home, traced_statements(home, session_id)) for home in homes}
    small, large = (profiles[size] for size in SIZES)
    print(f"  {'calls':>5} {'rows 1k':>8} {'rows 100k':>9} {'ms 1k':>7} {'ms 100k':>8}  statement")
    for key in sorted(large, key=lambda k: -large[k][2]):
        calls, rows_large, ms_large = large[key]
        _, rows_small, ms_small = small.get(key, (0, 0, 0.0))
        grows = "  <-- answer grows with the store" if rows_large > 2 * rows_small else ""
        print(
            f"  {calls:>5} {rows_small:>8} {rows_large:>9} {ms_small * 1000:>7.2f} "
            f"{ms_large * 1000:>8.2f}  {key}{grows}"
        )
    for size, profile in profiles.items():
        total = sum(seconds for _, _, seconds in profile.values())
        rows = sum(rows for _, rows, _ in profile.values())
        print(f"  {size:>7,} past errors: SQL {total * 1000:.1f} ms per analysis, {rows:,} rows")


def time_analyses(homes: list[Home], session_id: str) -> dict[int, list[float]]:
    """Seconds per gateway call, the homes interleaved call by call, after one warm-up each."""
    gateways = {home.size: Gateway(home.settings) for home in homes}
    times: dict[int, list[float]] = {size: [] for size in gateways}
    for size, gateway in gateways.items():
        print(f"  warm-up {size:>7,}: {hits(analyze(gateway, session_id))}")
    for _ in range(REPETITIONS):
        for size, gateway in gateways.items():
            started = time.perf_counter()
            analyze(gateway, session_id)
            times[size].append(time.perf_counter() - started)
    return times


def verdict(times: dict[int, list[float]]) -> bool:
    """Print median and p90 of both sizes and the ratio of medians; True when on target."""
    for size in SIZES:
        values = times[size]
        p90 = statistics.quantiles(values, n=10)[-1]
        print(
            f"    {size:>7,} past errors: median {statistics.median(values) * 1000:8.1f} ms  "
            f"p90 {p90 * 1000:8.1f} ms  (min {min(values) * 1000:.1f}, n={len(values)})"
        )
    small, large = (statistics.median(times[size]) for size in SIZES)
    ratio = large / small
    ok = ratio <= TARGET_RATIO
    print(
        f"    ratio {SIZES[1] // 1000}k/{SIZES[0] // 1000}k = {ratio:.2f}  "
        f"(target <= {TARGET_RATIO})  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def build_home(root: Path, size: int) -> tuple[Home, str]:
    """A home with `size` sessions, past errors and resolutions, plus the analyzed session."""
    home = Home(size, Settings.resolve(root / f"home-{size}"))
    started = time.perf_counter()
    session_seconds = populate(home.settings, size)
    fingerprints, resolutions = bulk_insert_history(home.settings, size)
    session_id, errors = add_analyzed_session(home.settings)
    seconds = time.perf_counter() - started
    shared = len({e.fingerprint for e in errors} & fingerprints)
    megabytes = home.settings.database_path.stat().st_size / 1e6
    print(
        f"populated {size:>7,} past errors, {resolutions:,} resolutions, {size:,} sessions in "
        f"{seconds:.1f} s (sessions {session_seconds:.1f} s; {megabytes:.1f} MB); "
        f"{len(fingerprints):,} distinct past fingerprints, {shared} of the analyzed "
        f"session's {len({e.fingerprint for e in errors})} among them"
    )
    return home, session_id


def main() -> int:
    """Populate both homes, trace and plan the analysis SQL, time the action; exit 1 on a miss."""
    print(
        f"error:analyze of a failed session with {ANALYZED_ERRORS} errors: "
        f"{SIZES[1]:,} vs {SIZES[0]:,} stored past errors (and as many resolutions)"
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; sqlite {sqlite3.sqlite_version}"
    )
    print(
        f"mix: {RECURRING_SHARE:.0%} of past errors recur in the analyzed session "
        f"({len(RECURRING)} failures), the rest unrelated; {NOVEL_SHARE:.0%} of analyzed "
        f"errors novel; {MANUAL_SHARE:.0%} of resolutions manual"
    )
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-analyze-") as tmp:
        built = [build_home(Path(tmp), size) for size in SIZES]
        homes = [home for home, _ in built]
        session_ids = {session_id for _, session_id in built}
        if len(session_ids) != 1:
            raise RuntimeError("the analyzed session differs between the homes")
        session_id = session_ids.pop()

        print(f"\nSELECTs one analysis issues, planned on the {SIZES[1]:,} store")
        statements = traced_statements(homes[-1], session_id)
        planned_ok = print_plans(homes[-1], statements)
        print("\nthe same SQL replayed on both stores (best of 3), slowest first")
        print_profiles(homes, session_id)

        print(
            f"\nGateway(settings).invoke(actor, 'error:analyze', {{'session_id': ...}}), "
            f"{REPETITIONS} calls per store, interleaved"
        )
        ok = verdict(time_analyses(homes, session_id))

    ok = ok and planned_ok
    print(f"\nverdict: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
