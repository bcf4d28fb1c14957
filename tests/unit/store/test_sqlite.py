"""What only the SQLite store promises: WAL, schema versioning, coded failures, real races."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.errors import ConflictError, ErrorCode, PermissionDeniedError, StoreError
from bunsui_core.model.claims import claimed, escalated
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.recovery import ErrorLabel
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobRun,
    OperationRun,
    Session,
    SessionStatus,
    utc_now,
)
from bunsui_core.store import sqlite as sqlite_module
from bunsui_core.store._sqlite_schema import MIGRATIONS
from bunsui_core.store.base import SessionFilter, update_session
from bunsui_core.store.sqlite import SqliteStore


def make_session(
    session_id: str,
    *,
    status: SessionStatus = SessionStatus.RUNNING,
    pipeline_id: str = "etl",
    created_at: str | None = None,
) -> Session:
    """A session of version 1 of `pipeline_id`."""
    fields: dict[str, Any] = {"created_at": created_at} if created_at else {}
    return Session(
        session_id=session_id, pipeline_id=pipeline_id, pipeline_version=1, status=status, **fields
    )


def make_pipeline() -> Any:
    """A minimal valid pipeline."""
    return validate_pipeline_data(
        {
            "name": "etl",
            "jobs": [
                {
                    "job_id": "a",
                    "operations": [{"operation_id": "o", "config": {"operation_type": "glue"}}],
                }
            ],
        }
    )


@pytest.fixture
def raw(store: SqliteStore) -> Iterator[sqlite3.Connection]:
    """A second, plain connection to the store's file (autocommit)."""
    connection = sqlite3.connect(store.path, isolation_level=None)
    yield connection
    connection.close()


def store_error_code(call: Callable[[], object]) -> ErrorCode:
    """The code of the StoreError `call` raises (it must raise one)."""
    with pytest.raises(StoreError) as caught:
        call()
    return caught.value.code


class TestFileFormat:
    def test_wal_mode_is_on(self, store, raw):
        """The database file is in WAL mode, so readers never wait for the writer."""
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    def test_schema_version_is_recorded(self, store, raw):
        """PRAGMA user_version holds the number of migrations applied."""
        assert raw.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"pipelines", "sessions", "job_runs", "operation_runs", "errors"} <= tables

    def test_reopening_keeps_data_and_schema(self, store, raw):
        """Opening an existing database migrates nothing and finds the stored data."""
        created = store.create_session(make_session("ses-1"))
        store.close()
        reopened = SqliteStore(store.path)
        try:
            assert reopened.get_session("ses-1") == created
        finally:
            reopened.close()
        assert raw.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)

    def test_newer_schema_is_refused(self, tmp_path):
        """A database written by a newer bunsui is STORE_SCHEMA_TOO_NEW and left untouched."""
        path = tmp_path / "newer.db"
        newer = len(MIGRATIONS) + 1
        with sqlite3.connect(path) as connection:
            connection.execute(f"PRAGMA user_version = {newer}")
        connection.close()
        with pytest.raises(StoreError) as caught:
            SqliteStore(path)
        assert caught.value.code == ErrorCode.STORE_SCHEMA_TOO_NEW
        assert caught.value.details["schema_version"] == newer
        check = sqlite3.connect(path)
        try:
            assert check.execute("PRAGMA user_version").fetchone() == (newer,)
        finally:
            check.close()

    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count files")
    def test_a_store_that_fails_to_open_keeps_no_file_open(self, tmp_path):
        """A database a newer bunsui wrote is refused, and the refused store's connection is
        closed: a server that keeps being asked for it does not run out of file handles."""
        path = tmp_path / "newer.db"
        with sqlite3.connect(path) as connection:
            connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        connection.close()

        def open_files() -> list[str]:
            links = (os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.exists())
            return [link for link in links if link.startswith(str(path))]

        for _ in range(3):
            assert store_error_code(lambda: SqliteStore(path)) == ErrorCode.STORE_SCHEMA_TOO_NEW
        assert open_files() == []

    def test_non_database_file_is_corrupt(self, tmp_path):
        """A file that is not SQLite is STORE_CORRUPT, not a raw sqlite3 error."""
        path = tmp_path / "notes.db"
        path.write_bytes(b"these are my notes, not a database\n" * 200)
        assert store_error_code(lambda: SqliteStore(path)) == ErrorCode.STORE_CORRUPT


class TestCorruptRows:
    @pytest.mark.parametrize("body", ["{not json", '{"session_id": "ses-1"}', '"text"', "[]"])
    def test_corrupt_session_body(self, store, raw, body):
        """A session row whose body does not parse is STORE_CORRUPT for reads and listings."""
        store.create_session(make_session("ses-1"))
        raw.execute("UPDATE sessions SET body = ? WHERE session_id = 'ses-1'", (body,))
        assert store_error_code(lambda: store.get_session("ses-1")) == ErrorCode.STORE_CORRUPT
        assert (
            store_error_code(lambda: store.list_sessions(SessionFilter(), limit=10))
            == ErrorCode.STORE_CORRUPT
        )

    def test_corrupt_pipeline_body(self, store, raw):
        """A pipeline row that does not parse is STORE_CORRUPT for reads and registration."""
        store.register_pipeline("etl", make_pipeline())
        raw.execute("UPDATE pipelines SET body = '{\"version\": 1'")
        for call in (
            lambda: store.get_pipeline("etl"),
            store.list_pipelines,
            lambda: store.register_pipeline("etl", make_pipeline()),
        ):
            assert store_error_code(call) == ErrorCode.STORE_CORRUPT

    @pytest.mark.parametrize(
        ("table", "write", "read"),
        [
            (
                "job_runs",
                lambda s: s.put_job_run(JobRun(session_id="s1", job_id="a")),
                lambda s: s.list_job_runs("s1"),
            ),
            (
                "operation_runs",
                lambda s: s.put_operation_run(
                    OperationRun(session_id="s1", job_id="a", operation_id="o")
                ),
                lambda s: s.list_operation_runs("s1"),
            ),
            (
                "errors",
                lambda s: s.add_error(
                    ErrorRecord(session_id="s1", kind=FailureKind.TIMEOUT, message="m")
                ),
                lambda s: s.list_errors("s1"),
            ),
        ],
    )
    def test_corrupt_run_and_error_bodies(self, store, raw, table, write, read):
        """Run and error rows that do not parse are STORE_CORRUPT, never a pydantic error."""
        write(store)
        raw.execute(f'UPDATE {table} SET body = \'{{"status": "exploded"}}\'')  # noqa: S608
        assert store_error_code(lambda: read(store)) == ErrorCode.STORE_CORRUPT


class TestUnwritableFile:
    def test_a_database_that_cannot_be_written_says_so_not_read_only_mode(self, store):
        """A file SQLite cannot write (its permissions, a read-only file system) refuses the
        write with READ_ONLY and says what to check; it does not claim read-only mode, which
        nobody turned on. (query_only makes SQLite answer as for such a file, even as root.)"""
        store._db.execute("PRAGMA query_only=1")
        with pytest.raises(PermissionDeniedError) as caught:
            store.create_session(make_session("ses-1"))
        assert caught.value.code == ErrorCode.READ_ONLY
        assert "read-only mode" not in caught.value.message
        assert f"database {store.path} cannot be written" in caught.value.message
        assert caught.value.details == {"path": str(store.path)}


class TestLocking:
    def test_locked_database_is_store_locked(self, store, raw, monkeypatch):
        """Writes while another connection holds an exclusive lock fail with STORE_LOCKED."""
        monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_SECONDS", 0.05)
        impatient = SqliteStore(store.path)
        try:
            created = impatient.create_session(make_session("ses-1"))
            raw.execute("BEGIN EXCLUSIVE")
            try:
                started = time.monotonic()
                assert (
                    store_error_code(lambda: impatient.create_session(make_session("ses-2")))
                    == ErrorCode.STORE_LOCKED
                )
                assert time.monotonic() - started < 3
                assert (
                    store_error_code(lambda: impatient.update_session(created, expected_version=0))
                    == ErrorCode.STORE_LOCKED
                )
                assert (
                    store_error_code(
                        lambda: impatient.put_job_run(JobRun(session_id="ses-1", job_id="a"))
                    )
                    == ErrorCode.STORE_LOCKED
                )
                assert impatient.get_session("ses-1") == created  # WAL: reads still work
            finally:
                raw.execute("ROLLBACK")
            assert impatient.create_session(make_session("ses-2")).session_id == "ses-2"
        finally:
            impatient.close()


RACE_SCRIPT = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from bunsui_core.errors import ConflictError
    from bunsui_core.store.sqlite import SqliteStore

    store = SqliteStore(Path(sys.argv[1]))
    wanted = store.get_session("ses-1").model_copy(update={"failed_jobs": [sys.argv[3]]})
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    try:  # every child bets on version 0, so a late starter cannot win a second time
        store.update_session(wanted, expected_version=0)
    except ConflictError:
        print("conflict")
    else:
        print("won")
    store.close()
""")


FIRST_OPEN_SCRIPT = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from bunsui_core.errors import StoreError
    from bunsui_core.store.sqlite import SqliteStore

    root, start_at, rounds = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    for n in range(rounds):
        time.sleep(max(0.0, start_at + n * 0.05 - time.time()))
        try:
            SqliteStore(root / str(n) / "bunsui.db").close()
        except StoreError as exc:
            print(f"round {n}: {exc.code}: {exc}")
""")


class TestConcurrentWriters:
    def test_threads_racing_on_one_version_have_one_winner(self, store):
        """Writers on separate connections racing on the same version: exactly one wins."""
        writers = 8
        base = store.create_session(make_session("ses-1"))
        stores = [SqliteStore(store.path) for _ in range(writers)]
        barrier = threading.Barrier(writers)
        outcomes: list[object] = [None] * writers

        def write(index: int) -> None:
            wanted = base.model_copy(update={"failed_jobs": [f"w{index}"]})
            barrier.wait()
            try:
                outcomes[index] = stores[index].update_session(wanted, expected_version=0)
            except ConflictError as error:
                outcomes[index] = error

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        finally:
            for opened in stores:
                opened.close()
        winners = [o for o in outcomes if isinstance(o, Session)]
        losers = [o for o in outcomes if isinstance(o, ConflictError)]
        assert (len(winners), len(losers)) == (1, writers - 1)
        assert all(e.code == ErrorCode.CONFLICT for e in losers)
        assert store.get_session("ses-1") == winners[0]
        assert winners[0].version == 1

    def test_processes_racing_on_one_version_have_one_winner(self, store):
        """Separate processes racing on the same version: exactly one wins, the rest conflict."""
        store.create_session(make_session("ses-1"))
        start_at = time.time() + 1.5
        children = [
            subprocess.Popen(
                [sys.executable, "-c", RACE_SCRIPT, str(store.path), str(start_at), f"p{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        results = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            results.append(out.strip())
        assert sorted(results) == ["conflict", "conflict", "conflict", "won"]
        final = store.get_session("ses-1")
        assert final.version == 1
        assert final.failed_jobs[0] in {"p0", "p1", "p2", "p3"}

    def test_processes_opening_a_new_home_at_once_all_open_it(self, tmp_path):
        """Two commands started together on a new home (`events tail --follow` and `pipeline
        run`) both create it: switching a new file to WAL is not left to SQLite's busy handler,
        which does not cover that switch, so neither fails STORE_LOCKED."""
        start_at, rounds = time.time() + 2.0, 40
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    FIRST_OPEN_SCRIPT,
                    str(tmp_path),
                    str(start_at),
                    str(rounds),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        for child in children:
            out, err = child.communicate(timeout=120)
            assert (child.returncode, out) == (0, ""), err
        for n in range(rounds):
            raw = sqlite3.connect(tmp_path / str(n) / "bunsui.db")
            try:
                assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
                assert raw.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
            finally:
                raw.close()

    @pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
    def test_helper_loses_no_update_under_contention(self, store, shared):
        """Many threads appending via update_session all land; none is lost to a race."""
        writers = 8
        store.create_session(make_session("ses-1"))
        stores = [store if shared else SqliteStore(store.path) for _ in range(writers)]
        barrier = threading.Barrier(writers)
        failures: list[BaseException] = []

        def append(index: int) -> None:
            barrier.wait()
            try:
                update_session(
                    stores[index],
                    "ses-1",
                    lambda s: s.model_copy(update={"failed_jobs": [*s.failed_jobs, f"w{index}"]}),
                )
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=append, args=(i,)) for i in range(writers)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            if not shared:
                for opened in stores:
                    opened.close()
        assert failures == []
        final = store.get_session("ses-1")
        assert sorted(final.failed_jobs) == sorted(f"w{i}" for i in range(writers))
        assert final.version == writers


def data_label(error_id: str, template: str) -> ErrorLabel:
    """A person's DATA label on an error's template."""
    return ErrorLabel(
        error_id=error_id,
        template=template,
        category="DATA",
        action="fix_code_or_data",
        actor="alice",
    )


def listing_sql(
    store: SqliteStore, session_filter: SessionFilter, cursor: str | None = None
) -> str:
    """The SQL (values inlined) that list_sessions runs for this filter."""
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    try:
        store.list_sessions(session_filter, limit=5, cursor=cursor)
    finally:
        store._db.set_trace_callback(None)
    [sql] = [s for s in seen if "FROM sessions" in s]
    return sql


class TestQueryPlans:
    @pytest.mark.parametrize(
        ("session_filter", "index"),
        [
            (SessionFilter(status="queued"), "sessions_by_status"),
            (
                SessionFilter(status="queued", created_after="2024-01-01T00:00:00.000000Z"),
                "sessions_by_status",
            ),
            (SessionFilter(pipeline_id="etl"), "sessions_by_pipeline"),
            (SessionFilter(), "sessions_by_created"),
        ],
    )
    @pytest.mark.parametrize("second_page", [False, True], ids=["first-page", "next-page"])
    def test_listing_walks_the_matching_index(self, store, raw, session_filter, index, second_page):
        """Each listing reads its index in result order: no table scan, no sort step."""
        for i in range(12):
            status = SessionStatus.QUEUED if i % 2 else SessionStatus.FAILED
            store.create_session(
                make_session(
                    f"ses-{i:02d}", status=status, created_at=f"2024-06-01T00:00:{i:02d}.000000Z"
                )
            )
        cursor = None
        if second_page:
            cursor = store.list_sessions(session_filter, limit=2).next_cursor
            assert cursor is not None
        sql = listing_sql(store, session_filter, cursor)
        plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sql))
        assert f"USING INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan

    def test_labels_of_more_templates_than_sqlite_has_variables(self, store, raw):
        """An analysis of a session with thousands of failed jobs asks for as many templates:
        past the variable cap of the SQLite build (999 before 3.32, the cap set here) the
        lookup still answers, through the template index rather than a scan."""
        store._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        wanted = [f"step {i} failed on <*>" for i in range(5_000)]
        labels = [data_label(f"err-{i}", wanted[i]) for i in (3, 4_999)]
        store.add_error_label(labels[0])
        store.add_error_label(data_label("err-x", "not asked <*>"))
        store.add_error_label(labels[1])
        seen: list[str] = []
        store._db.set_trace_callback(seen.append)
        try:
            assert store.list_error_labels(templates=set(wanted)) == labels
        finally:
            store._db.set_trace_callback(None)
        [sql] = [s for s in seen if "FROM error_labels" in s]
        plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX error_labels_by_template" in plan, plan

    def test_labels_of_templates_holding_a_nul_are_found(self, store):
        """A job's UTF-16 output leaves NULs in its error's template: a label kept under it is
        found by its template like any other (SQLite's JSON text would end at the NUL)."""
        utf16 = "Command exited with code <*>\nE\0r\0r\0o\0r\0"
        labels = [
            data_label(f"err-{i}", template) for i, template in enumerate([utf16, "E", "plain <*>"])
        ]
        for label in labels:
            store.add_error_label(label)
        assert store.list_error_labels(templates={utf16, "plain <*>"}) == [labels[0], labels[2]]
        assert store.list_error_labels(templates={utf16}) == [labels[0]]


class TestClaimColumnsMigration:
    def test_claims_and_escalations_stored_before_the_columns_are_found_after(self, tmp_path):
        """Migration 7 moved claims and escalations into indexed columns: a database of the
        schema before it, holding a claimed and an escalated session, lists both afterwards
        by `claimed`, `claimed_by` and `escalated` (nothing a person was tracking is lost)."""
        path = tmp_path / "v6.db"
        before = len(MIGRATIONS) - 1
        now = utc_now()
        held = claimed(
            make_session("ses-held", status=SessionStatus.FAILED, created_at=now),
            actor="ai-agent-2",
            instance_id="cli-1",
            ttl_seconds=600,
            note=None,
            now=now,
        )
        handed = escalated(
            make_session("ses-handed", status=SessionStatus.FAILED, created_at=now),
            actor="ai-agent",
            reason="needs a person",
            now=now,
        )
        with sqlite3.connect(path) as db:
            for number, script in enumerate(MIGRATIONS[:before], start=1):
                db.executescript(script)
                db.execute(f"PRAGMA user_version = {number}")
            for session in (held, handed):
                db.execute(
                    "INSERT INTO sessions (session_id, pipeline_id, status, created_at, "
                    "version, root_session_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        session.session_id,
                        session.pipeline_id,
                        str(session.status),
                        session.created_at,
                        session.version,
                        None,
                        session.model_dump_json(),
                    ),
                )
        db.close()
        store = SqliteStore(path)
        try:

            def ids(wanted: SessionFilter) -> list[str]:
                return [s.session_id for s in store.list_sessions(wanted, limit=10).sessions]

            assert ids(SessionFilter(claimed=True)) == ["ses-held"]
            assert ids(SessionFilter(claimed_by="ai-agent-2")) == ["ses-held"]
            assert ids(SessionFilter(claimed_by="ai-agent")) == []
            assert ids(SessionFilter(escalated=True)) == ["ses-handed"]
            assert ids(SessionFilter(claimed=False, escalated=False)) == []
        finally:
            store.close()
