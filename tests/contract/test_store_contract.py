"""The Store contract: behaviour every backend must share, written against the protocol only.

The `store` fixture (tests/contract/conftest.py) runs each test once per backend.
"""

import base64
import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from bunsui_core.errors import (
    BunsuiError,
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    InvalidTransitionError,
    NotFoundError,
)
from bunsui_core.model.insight import InsightState, InsightStatus, InsightVerdict
from bunsui_core.model.pipeline import Pipeline, content_hash
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.recovery import ErrorLabel
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobRun,
    OperationAttempt,
    OperationRun,
    RunnerInfo,
    RunStatus,
    Session,
    SessionStatus,
)
from bunsui_core.store.base import CAS_ATTEMPTS, SessionFilter, encode_cursor, update_session

EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """A fixed-width UTC timestamp `seconds` after a fixed epoch."""
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_pipeline(name: str = "etl", *, script: str = "step.py") -> Pipeline:
    """A small valid pipeline; `script` varies its content."""
    return validate_pipeline_data(
        {
            "name": name,
            "jobs": [
                {
                    "job_id": "extract",
                    "operations": [
                        {
                            "operation_id": "run",
                            "config": {
                                "operation_type": "command",
                                "parameters": {"command": ["python3", script]},
                            },
                        }
                    ],
                }
            ],
        }
    )


def make_session(
    session_id: str,
    *,
    status: SessionStatus = SessionStatus.CREATED,
    pipeline_id: str = "etl",
    created_at: str | None = None,
) -> Session:
    """A session of version 1 of `pipeline_id`."""
    return Session(
        session_id=session_id,
        pipeline_id=pipeline_id,
        pipeline_version=1,
        status=status,
        created_at=created_at or at(0),
    )


def ids(sessions: list[Session]) -> list[str]:
    """The session ids, in order."""
    return [s.session_id for s in sessions]


def all_pages(store, session_filter: SessionFilter, limit: int) -> list[list[str]]:
    """Walk every page of a listing; returns the ids of each page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = store.list_sessions(session_filter, limit=limit, cursor=cursor)
        pages.append(ids(page.sessions))
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 1000, "pagination does not terminate"


class TestPipelineRegistry:
    def test_first_registration_is_version_one(self, store):
        """A new pipeline id starts at version 1 with its content hash and source."""
        pipeline = make_pipeline()
        record = store.register_pipeline("etl", pipeline, source="/p/etl.yaml")
        assert (record.pipeline_id, record.version) == ("etl", 1)
        assert record.content_hash == content_hash(pipeline)
        assert record.source == "/p/etl.yaml"
        assert record.pipeline == pipeline

    def test_same_content_keeps_the_version(self, store):
        """Registering identical content again returns the stored latest version unchanged."""
        first = store.register_pipeline("etl", make_pipeline(), source="a.yaml")
        again = store.register_pipeline("etl", make_pipeline(), source="b.yaml")
        assert again == first
        assert store.get_pipeline("etl") == first

    def test_changed_content_is_the_next_version(self, store):
        """Different content becomes version latest+1; older versions stay readable."""
        v1 = store.register_pipeline("etl", make_pipeline(script="one.py"))
        v2 = store.register_pipeline("etl", make_pipeline(script="two.py"))
        assert (v1.version, v2.version) == (1, 2)
        assert store.get_pipeline("etl") == v2
        assert store.get_pipeline("etl", 1) == v1
        assert store.get_pipeline("etl", 2) == v2

    def test_content_is_compared_with_the_latest_only(self, store):
        """Going back to older content is a new version, not a reuse of the old one."""
        store.register_pipeline("etl", make_pipeline(script="one.py"))
        store.register_pipeline("etl", make_pipeline(script="two.py"))
        back = store.register_pipeline("etl", make_pipeline(script="one.py"))
        assert back.version == 3
        assert back.pipeline == make_pipeline(script="one.py")

    def test_missing_pipeline_or_version_is_none(self, store):
        """Unknown ids and unknown versions read as None."""
        store.register_pipeline("etl", make_pipeline())
        assert store.get_pipeline("nope") is None
        assert store.get_pipeline("nope", 1) is None
        assert store.get_pipeline("etl", 2) is None

    def test_versions_are_counted_per_pipeline(self, store):
        """Each pipeline id has its own version sequence."""
        store.register_pipeline("a", make_pipeline(script="one.py"))
        store.register_pipeline("a", make_pipeline(script="two.py"))
        assert store.register_pipeline("b", make_pipeline(script="three.py")).version == 1

    def test_list_pipelines_gives_latest_versions_by_id(self, store):
        """The listing has one entry per pipeline, its latest version, sorted by id."""
        assert store.list_pipelines() == []
        store.register_pipeline("zeta", make_pipeline("zeta"))
        store.register_pipeline("alpha", make_pipeline("alpha", script="one.py"))
        latest = store.register_pipeline("alpha", make_pipeline("alpha", script="two.py"))
        listed = store.list_pipelines()
        assert [(p.pipeline_id, p.version) for p in listed] == [("alpha", 2), ("zeta", 1)]
        assert listed[0] == latest


class TestSessions:
    def test_create_and_get_round_trip(self, store):
        """A created session reads back equal, runner and lists included."""
        session = make_session("ses-1").model_copy(
            update={
                "failed_jobs": ["a", "b"],
                "parent_session_id": "ses-0",
                "runner": RunnerInfo(pid=42, host="h", started_at=at(1), heartbeat_at=at(1)),
            }
        )
        assert store.create_session(session) == session
        assert store.get_session("ses-1") == session

    def test_missing_session_is_none(self, store):
        """An unknown session id reads as None."""
        assert store.get_session("ses-missing") is None

    def test_duplicate_id_is_a_conflict(self, store):
        """Creating a session whose id exists is CONFLICT and leaves the first one in place."""
        original = store.create_session(make_session("ses-1"))
        with pytest.raises(ConflictError) as caught:
            store.create_session(make_session("ses-1", pipeline_id="other"))
        assert caught.value.code == ErrorCode.CONFLICT
        assert store.get_session("ses-1") == original


class TestCompareAndSet:
    def test_update_bumps_version_and_is_stored(self, store):
        """A write with the current version succeeds, bumps the version and is what reads see."""
        created = store.create_session(make_session("ses-1"))
        wanted = created.model_copy(update={"status": SessionStatus.QUEUED})
        updated = store.update_session(wanted, expected_version=created.version)
        assert updated.version == created.version + 1
        assert updated.status is SessionStatus.QUEUED
        assert updated.updated_at >= created.updated_at
        assert store.get_session("ses-1") == updated

    def test_versions_count_every_write(self, store):
        """Each successful write increments the version by exactly one."""
        session = store.create_session(make_session("ses-1"))
        for status in (SessionStatus.QUEUED, SessionStatus.RUNNING, SessionStatus.COMPLETED):
            before = session.version
            session = store.update_session(
                session.model_copy(update={"status": status}), expected_version=before
            )
            assert session.version == before + 1
        assert store.get_session("ses-1").version == 3

    def test_stale_version_is_a_conflict(self, store):
        """A write based on an old version is CONFLICT and changes nothing."""
        created = store.create_session(make_session("ses-1"))
        winner = store.update_session(
            created.model_copy(update={"status": SessionStatus.QUEUED}),
            expected_version=created.version,
        )
        loser = created.model_copy(update={"status": SessionStatus.CANCELLED})
        with pytest.raises(ConflictError) as caught:
            store.update_session(loser, expected_version=created.version)
        assert caught.value.code == ErrorCode.CONFLICT
        assert not isinstance(caught.value, InvalidTransitionError)
        assert store.get_session("ses-1") == winner

    def test_future_version_is_a_conflict(self, store):
        """A write claiming a version the store never had is CONFLICT too."""
        created = store.create_session(make_session("ses-1"))
        with pytest.raises(ConflictError):
            store.update_session(created, expected_version=created.version + 5)
        assert store.get_session("ses-1") == created

    def test_illegal_status_change_is_invalid_transition(self, store):
        """completed -> running is INVALID_TRANSITION and the stored session stays as it was."""
        created = store.create_session(make_session("ses-1", status=SessionStatus.RUNNING))
        done = store.update_session(
            created.model_copy(update={"status": SessionStatus.COMPLETED}), expected_version=0
        )
        with pytest.raises(InvalidTransitionError) as caught:
            store.update_session(
                done.model_copy(update={"status": SessionStatus.RUNNING}),
                expected_version=done.version,
            )
        assert caught.value.code == ErrorCode.INVALID_TRANSITION
        assert store.get_session("ses-1") == done

    def test_same_status_needs_no_transition(self, store):
        """Changing other fields while the status stays is a plain write."""
        created = store.create_session(make_session("ses-1", status=SessionStatus.RUNNING))
        updated = store.update_session(
            created.model_copy(update={"failed_jobs": ["a"]}), expected_version=created.version
        )
        assert updated.failed_jobs == ["a"]
        assert updated.status is SessionStatus.RUNNING

    def test_update_of_missing_session_is_not_found(self, store):
        """Updating a session that was never created is NOT_FOUND."""
        with pytest.raises(NotFoundError):
            store.update_session(make_session("ses-ghost"), expected_version=0)
        assert store.get_session("ses-ghost") is None


class TestHeartbeat:
    def test_heartbeat_is_visible_and_does_not_bump_version(self, store):
        """touch_heartbeat updates the runner's heartbeat but leaves the version alone."""
        runner = RunnerInfo(pid=7, host="h", started_at=at(0), heartbeat_at=at(0))
        created = store.create_session(
            make_session("ses-1", status=SessionStatus.RUNNING).model_copy(
                update={"runner": runner}
            )
        )
        store.touch_heartbeat("ses-1", at(30))
        seen = store.get_session("ses-1")
        assert seen.runner.heartbeat_at == at(30)
        assert seen.version == created.version

    def test_write_after_heartbeat_uses_the_same_version(self, store):
        """A heartbeat between read and write does not make the write a conflict."""
        runner = RunnerInfo(pid=7, host="h", started_at=at(0), heartbeat_at=at(0))
        created = store.create_session(
            make_session("ses-1", status=SessionStatus.RUNNING).model_copy(
                update={"runner": runner}
            )
        )
        store.touch_heartbeat("ses-1", at(30))
        done = store.update_session(
            created.model_copy(update={"status": SessionStatus.COMPLETED}),
            expected_version=created.version,
        )
        assert done.version == created.version + 1

    def test_heartbeat_of_missing_session_is_harmless(self, store):
        """Touching an unknown session creates nothing."""
        store.touch_heartbeat("ses-ghost", at(1))
        assert store.get_session("ses-ghost") is None


class TestUpdateSessionHelper:
    def test_applies_the_change(self, store):
        """The helper reads, applies the change and writes with compare-and-set."""
        store.create_session(make_session("ses-1"))
        result = update_session(
            store, "ses-1", lambda s: s.model_copy(update={"status": SessionStatus.QUEUED})
        )
        assert (result.status, result.version) == (SessionStatus.QUEUED, 1)
        assert store.get_session("ses-1") == result

    def test_no_change_writes_nothing(self, store):
        """Returning the session unchanged performs no write (the version stays)."""
        created = store.create_session(make_session("ses-1"))
        assert update_session(store, "ses-1", lambda s: s) == created
        assert store.get_session("ses-1").version == created.version

    def test_retries_after_a_lost_race(self, store):
        """When another writer wins between read and write, the helper re-reads and reapplies."""
        store.create_session(make_session("ses-1", status=SessionStatus.RUNNING))
        calls: list[int] = []

        def change(current: Session) -> Session:
            calls.append(current.version)
            if len(calls) == 1:  # another writer gets in first
                store.update_session(
                    current.model_copy(update={"error_summary": "other"}),
                    expected_version=current.version,
                )
            return current.model_copy(update={"failed_jobs": [*current.failed_jobs, "x"]})

        result = update_session(store, "ses-1", change)
        assert calls == [0, 1]
        assert (result.version, result.error_summary, result.failed_jobs) == (2, "other", ["x"])
        assert store.get_session("ses-1") == result

    def test_invalid_transition_is_not_retried(self, store):
        """An illegal status change propagates at once; the change runs only once."""
        store.create_session(make_session("ses-1", status=SessionStatus.CANCELLED))
        calls: list[int] = []

        def change(current: Session) -> Session:
            calls.append(current.version)
            return current.model_copy(update={"status": SessionStatus.RUNNING})

        with pytest.raises(InvalidTransitionError):
            update_session(store, "ses-1", change)
        assert calls == [0]

    def test_missing_session_is_not_found(self, store):
        """The helper reports an unknown session as NOT_FOUND."""
        with pytest.raises(NotFoundError):
            update_session(store, "ses-ghost", lambda s: s)

    def test_gives_up_after_repeated_losses(self, store):
        """A session that changes on every attempt ends in CONFLICT after CAS_ATTEMPTS tries."""
        store.create_session(make_session("ses-1", status=SessionStatus.RUNNING))
        calls: list[int] = []

        def change(current: Session) -> Session:
            calls.append(current.version)
            store.update_session(
                current.model_copy(update={"error_summary": str(len(calls))}),
                expected_version=current.version,
            )
            return current.model_copy(update={"failed_jobs": ["x"]})

        with pytest.raises(ConflictError):
            update_session(store, "ses-1", change)
        assert len(calls) == CAS_ATTEMPTS
        assert store.get_session("ses-1").failed_jobs == []


class TestListSessions:
    def test_newest_first(self, store):
        """Sessions are listed newest first whatever the insertion order."""
        for seconds, sid in [(20, "ses-b"), (10, "ses-a"), (30, "ses-c")]:
            store.create_session(make_session(sid, created_at=at(seconds)))
        page = store.list_sessions(SessionFilter(), limit=10)
        assert ids(page.sessions) == ["ses-c", "ses-b", "ses-a"]
        assert page.next_cursor is None

    def test_empty_store(self, store):
        """Listing an empty store is an empty page without a cursor."""
        page = store.list_sessions(SessionFilter(), limit=10)
        assert (page.sessions, page.next_cursor) == ([], None)

    def test_filters(self, store):
        """status, pipeline_id and the exclusive created_after/created_before bounds narrow."""
        rows = [
            ("s1", SessionStatus.QUEUED, "etl", 1),
            ("s2", SessionStatus.RUNNING, "etl", 2),
            ("s3", SessionStatus.QUEUED, "ml", 3),
            ("s4", SessionStatus.FAILED, "etl", 4),
            ("s5", SessionStatus.QUEUED, "etl", 5),
        ]
        for sid, status, pipeline_id, seconds in rows:
            store.create_session(
                make_session(sid, status=status, pipeline_id=pipeline_id, created_at=at(seconds))
            )

        def listed(**fields: object) -> list[str]:
            return ids(store.list_sessions(SessionFilter(**fields), limit=100).sessions)

        assert listed(status="queued") == ["s5", "s3", "s1"]
        assert listed(pipeline_id="ml") == ["s3"]
        assert listed(status="queued", pipeline_id="etl") == ["s5", "s1"]
        assert listed(created_after=at(2)) == ["s5", "s4", "s3"]
        assert listed(created_before=at(4)) == ["s3", "s2", "s1"]
        assert listed(created_after=at(1), created_before=at(5)) == ["s4", "s3", "s2"]
        assert listed(status="queued", created_after=at(1), created_before=at(5)) == ["s3"]
        assert listed(status="completed") == []
        assert listed(pipeline_id="nope") == []

    def test_status_filter_follows_updates(self, store):
        """After a status change the session is listed under its new status only."""
        created = store.create_session(make_session("s1", status=SessionStatus.QUEUED))
        store.update_session(
            created.model_copy(update={"status": SessionStatus.RUNNING}),
            expected_version=created.version,
        )
        assert store.list_sessions(SessionFilter(status="queued"), limit=10).sessions == []
        running = store.list_sessions(SessionFilter(status="running"), limit=10).sessions
        assert ids(running) == ["s1"]
        assert running[0].version == 1

    @pytest.mark.parametrize("limit", [1, 2, 3, 4, 7, 23, 24, 100])
    def test_pagination_has_no_duplicates_or_gaps(self, store, limit):
        """Walking pages returns every session exactly once, in order, ties on created_at too."""
        expected = []
        for index in range(23):
            created_at = at(index // 3)  # groups of three share a timestamp
            sid = f"ses-{(index * 7) % 23:02d}"
            store.create_session(make_session(sid, created_at=created_at))
            expected.append((created_at, sid))
        expected_ids = [sid for _, sid in sorted(expected, reverse=True)]
        pages = all_pages(store, SessionFilter(), limit)
        assert [sid for page in pages for sid in page] == expected_ids
        assert all(len(page) == limit for page in pages[:-1])
        assert 0 < len(pages[-1]) <= limit

    def test_pagination_when_every_timestamp_is_equal(self, store):
        """Sessions created in the same instant still page without duplicates or gaps."""
        for index in range(10):
            store.create_session(make_session(f"ses-{index}", created_at=at(0)))
        pages = all_pages(store, SessionFilter(), 3)
        assert [sid for page in pages for sid in page] == [f"ses-{i}" for i in range(9, -1, -1)]

    def test_pagination_with_a_filter(self, store):
        """Pages of a filtered listing hold only matching sessions, all of them once."""
        for index in range(12):
            status = SessionStatus.FAILED if index % 3 == 0 else SessionStatus.QUEUED
            store.create_session(
                make_session(f"ses-{index:02d}", status=status, created_at=at(index // 2))
            )
        pages = all_pages(store, SessionFilter(status="failed"), 2)
        assert [sid for page in pages for sid in page] == ["ses-09", "ses-06", "ses-03", "ses-00"]

    def test_last_full_page_has_no_cursor(self, store):
        """When the sessions fill the last page exactly, no cursor to an empty page is given."""
        for index in range(4):
            store.create_session(make_session(f"ses-{index}", created_at=at(index)))
        assert store.list_sessions(SessionFilter(), limit=4).next_cursor is None
        assert all_pages(store, SessionFilter(), 2) == [["ses-3", "ses-2"], ["ses-1", "ses-0"]]

    def test_cursor_is_stable_when_newer_sessions_arrive(self, store):
        """New sessions created while paging do not shift or repeat later pages."""
        for index in range(6):
            store.create_session(make_session(f"ses-{index}", created_at=at(index)))
        first = store.list_sessions(SessionFilter(), limit=3)
        store.create_session(make_session("ses-new", created_at=at(100)))
        second = store.list_sessions(SessionFilter(), limit=3, cursor=first.next_cursor)
        assert ids(first.sessions) == ["ses-5", "ses-4", "ses-3"]
        assert ids(second.sessions) == ["ses-2", "ses-1", "ses-0"]

    @pytest.mark.parametrize(
        "cursor",
        [
            "not a cursor",
            "",
            "!!!!",
            base64.urlsafe_b64encode(b"[1, 2]").decode(),
            base64.urlsafe_b64encode(b'["only-one"]').decode(),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
            encode_cursor("2024-01-01T00:00:00.000000Z", "\ud800"),
        ],
        ids=["text", "empty", "not-base64", "numbers", "one-element", "not-utf8", "lone-surrogate"],
    )
    def test_bad_cursor_is_invalid_argument(self, store, cursor):
        """A cursor bunsui did not hand out is INVALID_ARGUMENT, never a crash."""
        store.create_session(make_session("ses-1"))
        with pytest.raises(InvalidArgumentError) as caught:
            store.list_sessions(SessionFilter(), limit=10, cursor=cursor)
        assert caught.value.code == ErrorCode.INVALID_ARGUMENT


class TestJobAndOperationRuns:
    def test_job_runs_put_and_list(self, store):
        """Job runs are stored per session and listed back equal."""
        runs = [
            JobRun(session_id="s1", job_id="a", status=RunStatus.COMPLETED, workdir="/w/a"),
            JobRun(
                session_id="s1",
                job_id="b",
                status=RunStatus.UPSTREAM_FAILED,
                skipped_reason="a failed",
            ),
        ]
        for run in runs:
            store.put_job_run(run)
        store.put_job_run(JobRun(session_id="s2", job_id="a"))
        listed = sorted(store.list_job_runs("s1"), key=lambda r: r.job_id)
        assert listed == runs
        assert store.list_job_runs("s-none") == []

    def test_job_run_put_replaces(self, store):
        """Putting a job run again replaces the earlier one."""
        store.put_job_run(JobRun(session_id="s1", job_id="a", status=RunStatus.RUNNING))
        final = JobRun(session_id="s1", job_id="a", status=RunStatus.FAILED, error_summary="x")
        store.put_job_run(final)
        assert store.list_job_runs("s1") == [final]

    def test_runs_put_together_replace_by_key(self, store):
        """A job and its operations stored in one call read back like separate puts;
        a later call replaces them by key, and an empty call changes nothing."""
        store.put_runs(
            [JobRun(session_id="s1", job_id="a", status=RunStatus.RUNNING)],
            [OperationRun(session_id="s1", job_id="a", operation_id="o1")],
        )
        job = JobRun(session_id="s1", job_id="a", status=RunStatus.COMPLETED)
        ops = [
            OperationRun(session_id="s1", job_id="a", operation_id=o, status=RunStatus.COMPLETED)
            for o in ("o1", "o2")
        ]
        store.put_runs([job], ops)
        store.put_runs()
        assert store.list_job_runs("s1") == [job]
        assert sorted(store.list_operation_runs("s1"), key=lambda r: r.operation_id) == ops

    def test_operation_runs_put_list_and_filter_by_job(self, store):
        """Operation runs list per session, or per job of that session."""
        a1 = OperationRun(session_id="s1", job_id="a", operation_id="o1")
        a2 = OperationRun(session_id="s1", job_id="a", operation_id="o2")
        b1 = OperationRun(session_id="s1", job_id="b", operation_id="o1")
        other = OperationRun(session_id="s2", job_id="a", operation_id="o1")
        for run in (a1, a2, b1, other):
            store.put_operation_run(run)

        def key(run: OperationRun) -> tuple[str, str]:
            return run.job_id, run.operation_id

        assert sorted(store.list_operation_runs("s1"), key=key) == [a1, a2, b1]
        assert sorted(store.list_operation_runs("s1", "a"), key=key) == [a1, a2]
        assert store.list_operation_runs("s1", "b") == [b1]
        assert store.list_operation_runs("s1", "zzz") == []

    def test_operation_run_put_replaces_with_all_attempts(self, store):
        """Putting an operation run again replaces it, attempts included."""
        first = OperationAttempt(
            attempt=1,
            status=RunStatus.FAILED,
            started_at=at(0),
            finished_at=at(1),
            exit_code=1,
            stderr_tail="boom",
        )
        run = OperationRun(
            session_id="s1",
            job_id="a",
            operation_id="o",
            status=RunStatus.RUNNING,
            attempts=[first],
        )
        store.put_operation_run(run)
        second = OperationAttempt(
            attempt=2,
            status=RunStatus.COMPLETED,
            started_at=at(2),
            exit_code=0,
            peak_rss_mb=12.5,
            memory_limit_mb=64,
        )
        done = run.model_copy(update={"status": RunStatus.COMPLETED, "attempts": [first, second]})
        store.put_operation_run(done)
        assert store.list_operation_runs("s1") == [done]


class TestErrors:
    def test_errors_list_in_append_order(self, store):
        """Errors come back in the order they were added, each equal to what was stored."""
        added = [
            ErrorRecord(
                session_id="s1",
                job_id=f"j{i}",
                kind=FailureKind.EXIT_NONZERO,
                message=f"failure {i}",
                context={"exit_code": i, "tail": ["x"]},
            )
            for i in range(5)
        ]
        for error in added:
            store.add_error(error)
        assert store.list_errors("s1") == added

    def test_append_order_wins_over_equal_timestamps(self, store):
        """Errors with the same timestamp keep their append order."""
        added = [
            ErrorRecord(
                error_id=f"err-{9 - i}",
                session_id="s1",
                kind=FailureKind.TIMEOUT,
                message=str(i),
                timestamp=at(0),
            )
            for i in range(5)
        ]
        for error in added:
            store.add_error(error)
        assert [e.message for e in store.list_errors("s1")] == ["0", "1", "2", "3", "4"]

    def test_errors_are_per_session(self, store):
        """Each session lists only its own errors."""
        mine = ErrorRecord(session_id="s1", kind=FailureKind.RUNNER_LOST, message="lost")
        store.add_error(mine)
        store.add_error(ErrorRecord(session_id="s2", kind=FailureKind.TIMEOUT, message="slow"))
        assert store.list_errors("s1") == [mine]
        assert store.list_errors("s-none") == []

    def test_records_are_never_changed(self, store):
        """Adding a record with an existing error_id does not alter the stored one."""
        original = ErrorRecord(
            error_id="err-1", session_id="s1", kind=FailureKind.TIMEOUT, message="first"
        )
        store.add_error(original)
        with contextlib.suppress(BunsuiError):
            store.add_error(original.model_copy(update={"message": "rewritten"}))
        assert store.list_errors("s1") == [original]


class TestErrorLabels:
    def test_an_error_is_found_by_its_id(self, store):
        """`get_error` returns the stored record, and None for an id never stored."""
        error = ErrorRecord(session_id="s1", job_id="j", kind=FailureKind.EXIT_NONZERO, message="m")
        store.add_error(ErrorRecord(session_id="s2", kind=FailureKind.TIMEOUT, message="other"))
        store.add_error(error)
        assert store.get_error(error.error_id) == error
        assert store.get_error("err-missing") is None

    def test_labels_are_kept_in_the_order_given(self, store):
        """Labels come back oldest first, each equal to what was stored; a limit is honoured."""
        labels = [
            ErrorLabel(
                error_id=f"err-{i}",
                template="ModuleNotFoundError: No module named <*>",
                category="DEPENDENCY",
                action="fix_configuration",
                actor="alice",
                note=f"note {i}" if i else None,
            )
            for i in range(3)
        ]
        for label in labels:
            store.add_error_label(label)
        assert store.list_error_labels() == labels
        assert store.list_error_labels(limit=2) == labels[:2]

    def test_labels_are_found_by_template(self, store):
        """An analysis asks only for its messages' templates: it gets those labels, oldest
        first, and nothing for templates nobody labelled."""
        templates = ["A <*> failed", "B <*> failed", "A <*> failed"]
        labels = [
            ErrorLabel(
                error_id=f"err-{i}",
                template=template,
                category="DATA",
                action="fix_code_or_data",
                actor="alice",
            )
            for i, template in enumerate(templates)
        ]
        for label in labels:
            store.add_error_label(label)
        assert store.list_error_labels(templates={"A <*> failed"}) == [labels[0], labels[2]]
        assert store.list_error_labels(templates={"A <*> failed", "B <*> failed"}) == labels
        assert store.list_error_labels(templates={"C <*> failed"}) == []
        assert store.list_error_labels(templates=set()) == []


def make_state(insight_id: str, pipeline_id: str = "etl", **changes) -> InsightState:
    fields = {
        "rule": "memory_overprovisioned",
        "status": InsightStatus.DISMISSED,
        "actor": "alice",
        "reason": "batch job, memory is shared",
        **changes,
    }
    return InsightState(insight_id=insight_id, pipeline_id=pipeline_id, **fields)


class TestInsightStates:
    def test_round_trip_with_baseline_and_snapshot(self, store):
        """An applied insight keeps its snapshot, baseline and version exactly."""
        state = make_state(
            "ins-etl-00000001",
            status=InsightStatus.APPLIED,
            reason=None,
            snapshot={"title": "t", "evidence": {"points": [{"value": 1.5}]}},
            applied_at=at(5),
            applied_version=3,
            baseline={"limit": 512.0, "max_peak": 13.3},
        )
        store.put_insight_state(state)
        assert store.list_insight_states("etl") == [state]

    def test_put_replaces_the_decision(self, store):
        """A second put for the same insight replaces the first (the verdict is recorded)."""
        store.put_insight_state(make_state("ins-etl-00000001", status=InsightStatus.APPLIED))
        judged = make_state(
            "ins-etl-00000001",
            status=InsightStatus.APPLIED,
            verdict=InsightVerdict.HELPED,
            verdict_runs=3,
        )
        store.put_insight_state(judged)
        assert store.list_insight_states("etl") == [judged]

    def test_listed_per_pipeline_by_insight_id(self, store):
        """Each pipeline lists only its own decisions, ordered by insight id."""
        for insight_id in ("ins-etl-0000000c", "ins-etl-0000000a", "ins-etl-0000000b"):
            store.put_insight_state(make_state(insight_id))
        store.put_insight_state(make_state("ins-other-0000000a", pipeline_id="other"))
        assert [s.insight_id for s in store.list_insight_states("etl")] == [
            "ins-etl-0000000a",
            "ins-etl-0000000b",
            "ins-etl-0000000c",
        ]
        assert [s.pipeline_id for s in store.list_insight_states("other")] == ["other"]
        assert store.list_insight_states("none") == []
