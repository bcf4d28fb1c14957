"""What the DynamoDB store promises beyond the contract suite: the real HTTP wire path, races
between threads, no Scan, read-only mode, table management, coded AWS failures, large and
corrupt items, and the event feed's tombstones and holes.

`TestParity` runs the parts of the Store protocol that tests/contract does not cover yet
(tickets, audit, events, learning, overrides, idempotency, plans) against both backends, so
the two stay interchangeable.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from bunsui_core.errors import (
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from bunsui_core.governance.audit import INDEXED, AuditEvent, AuditResult, verify_chain
from bunsui_core.governance.tickets import Ticket, TicketStatus
from bunsui_core.model.event import EventKind
from bunsui_core.model.insight import InsightState, InsightStatus
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.recovery import (
    ErrorLabel,
    Outcome,
    OverrideVersion,
    PlanStep,
    RecoveryPlan,
    Resolution,
    ResolutionSource,
)
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobOverride,
    JobRun,
    OperationAttempt,
    OperationRun,
    RunStatus,
    Session,
    SessionStatus,
)
from bunsui_core.store._dynamodb_tables import TABLES
from bunsui_core.store.base import SessionFilter, Store
from bunsui_core.store.dynamodb import DynamoDBStore
from bunsui_core.store.sqlite import SqliteStore

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "ListTables", "DescribeTable"}
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
PROTOCOL_METHODS = {
    name for name, value in vars(Store).items() if not name.startswith("_") and callable(value)
}
AT = "2024-05-01T12:00:00.000000Z"


# fixtures


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region; never a real account."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request atomically; moto checks a condition and then writes in
    Python, so two threads could both pass the check. Serialize moto's request handling to
    model the real service (our code relies on nothing more than per-request atomicity)."""
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


def new_session(*handlers: tuple[str, Callable[..., Any]]) -> boto3.session.Session:
    """A boto3 session with fake credentials and the given event handlers (without any: a
    shared one, which loads the DynamoDB service model only once)."""
    if not handlers:
        return plain_session()
    session = fake_session()
    for event, handler in handlers:
        session.events.register(event, handler)
    return session


def fake_session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        region_name="us-east-1",
    )


@cache
def plain_session() -> boto3.session.Session:
    return fake_session()


class Recorder:
    """Names of the DynamoDB operations a client sent (a botocore before-call handler)."""

    def __init__(self) -> None:
        self.operations: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.operations.append(model.name)


@pytest.fixture
def mocked(aws_env: None, atomic_moto: None) -> Iterator[None]:
    """moto's in-process DynamoDB, empty."""
    with mock_aws():
        yield


@pytest.fixture
def ddb(mocked: None) -> Iterator[DynamoDBStore]:
    """A DynamoDB store on fresh tables."""
    store = DynamoDBStore(table_prefix="unit", session=new_session())
    store.create_tables()
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "dynamodb"])
def either(request: pytest.FixtureRequest, tmp_path: Any, mocked: None) -> Iterator[Store]:
    """An empty store of each backend."""
    store: Store
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "parity.db")
    else:
        store = DynamoDBStore(table_prefix="parity", session=new_session())
        store.create_tables()
    yield store
    store.close()


# records


def make_pipeline() -> Any:
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


def make_session(
    session_id: str, status: SessionStatus = SessionStatus.QUEUED, **fields: Any
) -> Session:
    return Session(
        session_id=session_id, pipeline_id="etl", pipeline_version=1, status=status, **fields
    )


def make_ticket(arguments_hash: str = "h1", requested_by: str = "ai", **fields: Any) -> Ticket:
    ticket = Ticket.request(
        action="job:mark",
        arguments={"job": "a"},
        arguments_hash=arguments_hash,
        requested_by=requested_by,
        rule="needs-approval",
        policy_hash="p",
    )
    return ticket.model_copy(update=fields)


def make_event(actor: str = "ai", action: str = "job:mark", **fields: Any) -> AuditEvent:
    return AuditEvent(
        actor=actor, action=action, result=AuditResult.ALLOWED, arguments_hash="h", **fields
    )


def make_resolution(
    action: str, outcome: Outcome, *, fingerprint: str = "fp", code: str = "OOM", **fields: Any
) -> Resolution:
    return Resolution(
        fingerprint=fingerprint,
        error_code=code,
        action=action,
        outcome=outcome,
        source=ResolutionSource.MANUAL,
        **fields,
    )


def make_plan(plan_id: str = "plan-1", description: str = "more memory") -> RecoveryPlan:
    return RecoveryPlan(
        plan_id=plan_id,
        session_id="ses-1",
        job_id="a",
        error_id=None,
        error_code="OOM",
        fingerprint="fp",
        action="increase_memory",
        description=description,
        success_probability=0.8,
        estimated_time_minutes=3.0,
        executable=True,
        steps=[PlanStep(step=1, action="rerun", command="bunsui session rerun", reason="r")],
        risks=[],
    )


def populate(store: Store) -> dict[str, Any]:
    """One record of every kind; returns what the write calls below need."""
    store.register_pipeline("etl", make_pipeline())
    created = store.create_session(make_session("ses-1"))
    store.create_session(make_session("ses-2", root_session_id="ses-1"))
    store.put_job_run(JobRun(session_id="ses-1", job_id="a"))
    store.put_operation_run(OperationRun(session_id="ses-1", job_id="a", operation_id="o"))
    error = ErrorRecord(session_id="ses-1", kind=FailureKind.KILLED_BY_SIGNAL, message="killed")
    store.add_error(error)
    store.add_resolution(
        make_resolution("rerun", Outcome.SUCCESS, fingerprint=error.fingerprint, error_id="e1")
    )
    store.add_override_version(
        OverrideVersion(
            session_id="ses-1", job_id="a", version=1, override=JobOverride(), actor="me"
        )
    )
    store.claim_idempotency_key("key-1", "ses-2")
    store.put_recovery_plan(make_plan())
    ticket = store.create_ticket(make_ticket())
    store.append_audit(make_event(session_id="ses-1"))
    return {
        "session": created,
        "ticket": ticket,
        "fingerprint": error.fingerprint,
        "error_id": error.error_id,
    }


def write_calls(data: dict[str, Any]) -> dict[str, Callable[[Store], object]]:
    """Every write method of the protocol, each on records `populate` stored."""
    session, ticket = data["session"], data["ticket"]
    return {
        "register_pipeline": lambda s: s.register_pipeline("etl2", make_pipeline()),
        "create_session": lambda s: s.create_session(make_session("ses-new")),
        "update_session": lambda s: s.update_session(
            session.model_copy(update={"status": SessionStatus.RUNNING}),
            expected_version=session.version,
        ),
        "touch_heartbeat": lambda s: s.touch_heartbeat("ses-1", AT),
        "put_job_run": lambda s: s.put_job_run(JobRun(session_id="ses-1", job_id="b")),
        "put_operation_run": lambda s: s.put_operation_run(
            OperationRun(session_id="ses-1", job_id="b", operation_id="o")
        ),
        "put_runs": lambda s: s.put_runs(
            [JobRun(session_id="ses-1", job_id="c")],
            [OperationRun(session_id="ses-1", job_id="c", operation_id="o")],
        ),
        "add_error": lambda s: s.add_error(
            ErrorRecord(session_id="ses-1", kind=FailureKind.TIMEOUT, message="slow")
        ),
        "add_resolution": lambda s: s.add_resolution(make_resolution("x", Outcome.FAILURE)),
        "add_error_label": lambda s: s.add_error_label(
            ErrorLabel(
                error_id=data["error_id"],
                template="killed",
                category="RESOURCE",
                action="increase_memory",
                actor="alice",
            )
        ),
        "add_override_version": lambda s: s.add_override_version(
            OverrideVersion(
                session_id="ses-1", job_id="a", version=2, override=JobOverride(), actor="me"
            )
        ),
        "claim_idempotency_key": lambda s: s.claim_idempotency_key("key-2", "ses-1"),
        "release_idempotency_key": lambda s: s.release_idempotency_key("key-1", "ses-2"),
        "put_recovery_plan": lambda s: s.put_recovery_plan(make_plan("plan-2")),
        "create_ticket": lambda s: s.create_ticket(make_ticket("h2")),
        "update_ticket": lambda s: s.update_ticket(
            ticket.model_copy(update={"status": TicketStatus.APPROVED}),
            expected_version=ticket.version,
        ),
        "append_audit": lambda s: s.append_audit(make_event()),
        "put_insight_state": lambda s: s.put_insight_state(
            InsightState(
                insight_id="ins-etl-0000abcd",
                pipeline_id="etl",
                rule="memory_overprovisioned",
                status=InsightStatus.DISMISSED,
                actor="me",
            )
        ),
    }


def read_calls(data: dict[str, Any]) -> dict[str, Callable[[Store], object]]:
    """Every read method of the protocol."""
    return {
        "get_pipeline": lambda s: s.get_pipeline("etl"),
        "list_pipelines": lambda s: s.list_pipelines(),
        "get_session": lambda s: s.get_session("ses-1"),
        "list_sessions": lambda s: (
            s.list_sessions(SessionFilter(status="queued"), limit=5),
            s.list_sessions(SessionFilter(claimed=False, escalated=True), limit=5),
        ),
        "list_job_runs": lambda s: s.list_job_runs("ses-1"),
        "list_operation_runs": lambda s: s.list_operation_runs("ses-1", "a"),
        "list_errors": lambda s: s.list_errors("ses-1"),
        "get_error": lambda s: s.get_error(data["error_id"]),
        "list_error_labels": lambda s: s.list_error_labels(),
        "list_errors_by_fingerprint": lambda s: s.list_errors_by_fingerprint(
            data["fingerprint"], limit=5, exclude_session_id="ses-9"
        ),
        "count_reruns": lambda s: s.count_reruns("ses-1"),
        "action_stats": lambda s: s.action_stats(fingerprint=data["fingerprint"]),
        "list_resolutions": lambda s: s.list_resolutions(error_code="OOM"),
        "resolutions_of_errors": lambda s: s.resolutions_of_errors(["e1"]),
        "list_override_versions": lambda s: s.list_override_versions("ses-1"),
        "find_idempotency_key": lambda s: s.find_idempotency_key("key-1"),
        "get_recovery_plan": lambda s: s.get_recovery_plan("plan-1"),
        "get_ticket": lambda s: s.get_ticket(data["ticket"].ticket_id),
        "find_pending_ticket": lambda s: s.find_pending_ticket("job:mark", "h1", "ai"),
        "list_tickets": lambda s: s.list_tickets(status="pending"),
        "list_audit": lambda s: s.list_audit(session_id="ses-1"),
        "recent_audit": lambda s: s.recent_audit(
            actor="ai-agent", action="job:rerun", since="2000-01-01T00:00:00.000000Z", limit=5
        ),
        "audit_head": lambda s: s.audit_head(),
        "audit_bodies": lambda s: s.audit_bodies(),
        "list_events": lambda s: s.list_events(),
        "list_insight_states": lambda s: s.list_insight_states("etl"),
        "last_event_seq": lambda s: s.last_event_seq(),
    }


def raw_client(store: DynamoDBStore) -> Any:
    """A plain client on the same (mocked) endpoint, to tamper with items as an outsider."""
    return new_session().client("dynamodb", endpoint_url=store._client.meta.endpoint_url)


# the wire path


class TestWirePath:
    def test_tables_cas_and_audit_over_http(self, aws_env, atomic_moto):
        """Through a real HTTP server: tables, session CAS, audit chain, events."""
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - needs moto[server]

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            store = DynamoDBStore(
                table_prefix="wire", endpoint_url=f"http://{host}:{port}", session=new_session()
            )
            assert len(store.create_tables()) == len(TABLES)
            assert store.create_tables() == []
            assert all(report.ok for report in store.describe_tables())

            created = store.create_session(make_session("ses-1"))
            running = store.update_session(
                created.model_copy(update={"status": SessionStatus.RUNNING}),
                expected_version=created.version,
            )
            assert running.version == created.version + 1
            with pytest.raises(ConflictError) as stale:
                store.update_session(created, expected_version=created.version)
            assert not isinstance(stale.value, InvalidTransitionError)
            with pytest.raises(InvalidTransitionError):
                store.update_session(
                    running.model_copy(update={"status": SessionStatus.CREATED}),
                    expected_version=running.version,
                )
            assert store.get_session("ses-1") == running

            entries = [store.append_audit(make_event(actor=f"a{i}")) for i in range(3)]
            assert [e.seq for e in entries] == [1, 2, 3]
            count, head, problem = verify_chain(store.audit_bodies())
            assert (count, head, problem) == (3, store.audit_head(), None)
            assert [(e.seq, e.status) for e in store.list_events()] == [
                (1, "queued"),
                (2, "running"),
            ]
            store.close()
        finally:
            server.stop()


# races


class TestConcurrency:
    def test_concurrent_audit_appends_form_one_chain(self, ddb):
        """Threads appending at once: contiguous seqs, every writer's entries in its own order,
        and the chain verifies (nobody forked it)."""
        threads, per_thread = 6, 8
        barrier = threading.Barrier(threads)
        seen: dict[int, list[int]] = {}

        def writer(number: int) -> None:
            barrier.wait()
            seen[number] = [
                ddb.append_audit(make_event(actor=f"w{number}", correlation_id=str(i))).seq
                for i in range(per_thread)
            ]

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        total = threads * per_thread
        assert sorted(seq for seqs in seen.values() for seq in seqs) == list(range(1, total + 1))
        assert all(seqs == sorted(seqs) for seqs in seen.values())
        count, head, problem = verify_chain(ddb.audit_bodies(limit=1000))
        assert (count, problem) == (total, None)
        assert head == ddb.audit_head()

    def test_an_append_that_lost_the_race_chains_after_the_winner(self, ddb, monkeypatch):
        """Another writer appends between our head read and our put: we retry, never fork."""
        original = ddb._audit_head_item
        calls: list[int] = []

        def head_then_interleave() -> Any:
            head = original()
            calls.append(1)
            if len(calls) == 1:
                rival.append_audit(make_event(actor="rival"))
            return head

        rival = DynamoDBStore(table_prefix="unit", session=new_session())
        monkeypatch.setattr(ddb, "_audit_head_item", head_then_interleave)
        mine = ddb.append_audit(make_event(actor="me"))
        assert mine.seq == 2
        assert [e.actor for e in ddb.list_audit()] == ["rival", "me"]
        assert verify_chain(ddb.audit_bodies())[2] is None

    def test_a_ticket_executes_exactly_once(self, ddb):
        """Many executors racing on one approved ticket: one wins, the rest get CONFLICT."""
        pending = ddb.create_ticket(make_ticket())
        approved = ddb.update_ticket(
            pending.model_copy(update={"status": TicketStatus.APPROVED}),
            expected_version=pending.version,
        )
        threads = 8
        barrier = threading.Barrier(threads)
        outcomes: list[str] = []
        lock = threading.Lock()

        def execute() -> None:
            barrier.wait()
            try:
                ddb.update_ticket(
                    approved.model_copy(update={"status": TicketStatus.EXECUTING}),
                    expected_version=approved.version,
                )
                outcome = "won"
            except InvalidTransitionError:
                outcome = "invalid-transition"
            except ConflictError:
                outcome = "conflict"
            with lock:
                outcomes.append(outcome)

        workers = [threading.Thread(target=execute) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(outcomes) == ["conflict"] * (threads - 1) + ["won"]
        final = ddb.get_ticket(pending.ticket_id)
        assert (final.status, final.version) == (TicketStatus.EXECUTING, approved.version + 1)
        statuses = [e.status for e in ddb.list_events() if e.kind is EventKind.TICKET]
        assert statuses == ["pending", "approved", "executing"]

    def test_identical_requests_racing_leave_one_pending_ticket(self, ddb):
        """Concurrent identical requests: exactly one pending ticket, the rest CONFLICT."""
        threads = 6
        barrier = threading.Barrier(threads)
        created: list[Ticket] = []
        conflicts: list[ConflictError] = []

        def request() -> None:
            barrier.wait()
            try:
                created.append(ddb.create_ticket(make_ticket()))
            except ConflictError as exc:
                conflicts.append(exc)

        workers = [threading.Thread(target=request) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert (len(created), len(conflicts)) == (1, threads - 1)
        assert ddb.find_pending_ticket("job:mark", "h1", "ai") == created[0]
        assert [t.ticket_id for t in ddb.list_tickets()] == [created[0].ticket_id]


# request paths


class TestRequests:
    def test_no_request_path_scans(self, mocked):
        """Every Store method, through a client that records operations: GetItem, Query and
        writes only — a Scan anywhere would read the whole table."""
        recorder = Recorder()
        store = DynamoDBStore(
            table_prefix="noscan", session=new_session(("before-call.dynamodb", recorder))
        )
        store.create_tables()
        recorder.operations.clear()
        data = populate(store)
        calls = {**read_calls(data), **write_calls(data)}
        for call in calls.values():
            call(store)
        store.close()
        assert set(calls) | {"close"} == PROTOCOL_METHODS
        assert "Scan" not in recorder.operations
        assert set(recorder.operations) <= READ_OPERATIONS | WRITE_OPERATIONS

    def test_store_has_every_protocol_method(self):
        """DynamoDBStore implements the whole Store protocol."""
        assert {name for name in PROTOCOL_METHODS if not hasattr(DynamoDBStore, name)} == set()

    def test_the_local_backend_never_imports_boto3(self):
        """boto3 is imported by the DynamoDB module only, so the CLI's local path stays light."""
        code = (
            "import sys\n"
            "import bunsui_core.store, bunsui_core.store.sqlite\n"
            "import bunsui_core.store._dynamodb_tables\n"
            "assert 'boto3' not in sys.modules, 'boto3 imported'\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


def template_label(error_id: str, template: str) -> ErrorLabel:
    return ErrorLabel(
        error_id=error_id, template=template, category="DATA", action="fix_code_or_data", actor="al"
    )


class TestLabelsByTemplate:
    def test_an_analysis_reads_only_its_templates_labels(self, mocked):
        """Labels of one template are one Query of the template index: the other labels
        (however many people wrote) are never read."""
        queries: list[dict[str, Any]] = []
        store = DynamoDBStore(
            table_prefix="labels",
            session=new_session(
                ("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(params))
            ),
        )
        store.create_tables()
        for i in range(30):
            store.add_error_label(template_label(f"err-{i}", f"other {i} <*> failed"))
        wanted = template_label("err-wanted", "ValueError: bad row <*>")
        store.add_error_label(wanted)
        queries.clear()
        assert store.list_error_labels(templates={"ValueError: bad row <*>"}) == [wanted]
        assert [q.get("IndexName") for q in queries] == ["by_label_template"]
        store.close()

    def test_aws_init_indexes_labels_written_before_the_index(self, ddb):
        """Tables laid out by schema 2 have labels without the index key: `aws init` adds
        the index and fills the key in, so the old label is found by its template again."""
        old = template_label("err-old", "KeyError: <*>")
        ddb.add_error_label(old)
        client = raw_client(ddb)
        client.update_table(
            TableName="unit-kv",
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_label_template"}}],
        )
        client.update_item(
            TableName="unit-kv",
            Key={"pk": {"S": "labels"}, "sk": {"S": f"{1:016d}"}},
            UpdateExpression="REMOVE glabel",
        )
        assert ddb.create_tables() == [
            "created index by_label_template on unit-kv",
            "indexed 1 error labels by template",
        ]
        assert ddb.list_error_labels(templates={"KeyError: <*>"}) == [old]
        assert ddb.create_tables() == []


class TestReadOnly:
    def test_every_write_is_refused_and_nothing_is_sent(self, mocked):
        """read_only: each write is READ_ONLY before any request; reads still work."""
        writer = DynamoDBStore(table_prefix="ro", session=new_session())
        writer.create_tables()
        data = populate(writer)
        recorder = Recorder()
        reader = DynamoDBStore(
            table_prefix="ro",
            read_only=True,
            session=new_session(("before-call.dynamodb", recorder)),
        )
        writes = {**write_calls(data), "create_tables": lambda s: s.create_tables()}
        for name, call in writes.items():
            with pytest.raises(PermissionDeniedError) as refused:
                call(reader)
            assert refused.value.code == ErrorCode.READ_ONLY, name
        assert recorder.operations == []
        for call in read_calls(data).values():
            call(reader)
        assert not set(recorder.operations) & WRITE_OPERATIONS
        assert reader.get_session("ses-1") == data["session"]
        assert reader.describe_tables()[0].ok


class TestTables:
    def test_create_tables_is_idempotent(self, mocked):
        """The first call creates every table, the next does nothing; a lost index comes back."""
        store = DynamoDBStore(table_prefix="idem", session=new_session())
        done = store.create_tables()
        assert done == [f"created table idem-{spec.suffix}" for spec in TABLES]
        assert store.create_tables() == []
        raw_client(store).update_table(
            TableName="idem-sessions",
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_status"}}],
        )
        sessions = next(r for r in store.describe_tables() if r.name == "idem-sessions")
        assert (sessions.ok, sessions.missing_indexes) == (False, ["by_status"])
        assert store.create_tables() == ["created index by_status on idem-sessions"]
        assert all(report.ok for report in store.describe_tables())

    def test_missing_tables_say_how_to_create_them(self, mocked):
        """Before `bunsui aws init`, any call is STORE_CORRUPT naming the fix."""
        store = DynamoDBStore(table_prefix="none", session=new_session())
        with pytest.raises(StoreError) as caught:
            store.get_session("ses-1")
        assert caught.value.code == ErrorCode.STORE_CORRUPT
        assert "bunsui aws init" in caught.value.message
        assert not any(report.exists for report in store.describe_tables())

    def test_missing_index_says_how_to_create_it(self, ddb):
        """A listing whose index is gone is STORE_CORRUPT naming the fix."""
        raw_client(ddb).update_table(
            TableName="unit-sessions",
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_status"}}],
        )
        with pytest.raises(StoreError) as caught:
            ddb.list_sessions(SessionFilter(status="queued"), limit=5)
        assert caught.value.code == ErrorCode.STORE_CORRUPT
        assert "bunsui aws init" in caught.value.message

    def test_a_table_with_other_keys_is_refused(self, mocked):
        """A same-named table with another key layout is STORE_CORRUPT, left untouched."""
        store = DynamoDBStore(table_prefix="odd", session=new_session())
        raw_client(store).create_table(
            TableName="odd-kv",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with pytest.raises(StoreError) as caught:
            store.create_tables()
        assert caught.value.code == ErrorCode.STORE_CORRUPT
        kv = next(r for r in store.describe_tables() if r.name == "odd-kv")
        assert not kv.ok
        assert kv.problems

    def test_bad_prefix_is_invalid_argument(self):
        """A prefix DynamoDB would refuse is caught before any request."""
        with pytest.raises(InvalidArgumentError):
            DynamoDBStore(table_prefix="no spaces", session=new_session())


# coded failures


class FakeHttp:
    """Enough of an HTTP response for botocore to raise the error we hand it."""

    status_code = 400
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only stand-in


def failing(code: str, **extra: Any) -> Callable[..., Any]:
    """A before-call handler that answers with an AWS error instead of sending."""

    def answer(**_: Any) -> Any:
        return FakeHttp(), {"Error": {"Code": code, "Message": "simulated"}, **extra}

    return answer


class TestCodedFailures:
    @pytest.mark.parametrize(
        "code", ["ProvisionedThroughputExceededException", "ThrottlingException"]
    )
    def test_throttling_is_store_locked(self, ddb, code):
        """Throttling is STORE_LOCKED: retryable, not corruption."""
        store = DynamoDBStore(
            table_prefix="unit",
            session=new_session(("before-call.dynamodb.GetItem", failing(code))),
        )
        with pytest.raises(StoreError) as caught:
            store.get_session("ses-1")
        assert caught.value.code == ErrorCode.STORE_LOCKED

    def test_throttled_transaction_is_store_locked_and_its_event_seq_is_buried(self, ddb):
        """A cancelled transaction changes nothing; its event seq gets a tombstone."""
        reasons = {"CancellationReasons": [{"Code": "None"}, {"Code": "ThrottlingError"}]}
        handler = failing("TransactionCanceledException", **reasons)
        store = DynamoDBStore(
            table_prefix="unit",
            session=new_session(("before-call.dynamodb.TransactWriteItems", handler)),
        )
        with pytest.raises(StoreError) as caught:
            store.create_session(make_session("ses-1"))
        assert caught.value.code == ErrorCode.STORE_LOCKED
        assert ddb.get_session("ses-1") is None
        ddb.create_session(make_session("ses-2"))
        assert [(e.seq, e.id) for e in ddb.list_events()] == [(2, "ses-2")]
        assert ddb.last_event_seq() == 2

    def test_access_denied_is_permission_denied(self, ddb):
        """IAM refusing a call is PERMISSION_DENIED with the AWS code in the details."""
        store = DynamoDBStore(
            table_prefix="unit",
            session=new_session(("before-call.dynamodb.Query", failing("AccessDeniedException"))),
        )
        with pytest.raises(PermissionDeniedError) as caught:
            store.list_errors("ses-1")
        assert caught.value.details["aws_code"] == "AccessDeniedException"

    def test_corrupt_items_are_store_corrupt(self, ddb):
        """Items that do not parse are STORE_CORRUPT; audit_bodies hands them over as `{}`."""
        ddb.create_session(make_session("ses-1"))
        ddb.append_audit(make_event())
        raw = raw_client(ddb)
        raw.update_item(
            TableName="unit-sessions",
            Key={"pk": {"S": "ses-1"}},
            UpdateExpression="SET body = :b",
            ExpressionAttributeValues={":b": {"S": "{not json"}},
        )
        raw.update_item(
            TableName="unit-audit",
            Key={"pk": {"S": "audit"}, "sk": {"N": "1"}},
            UpdateExpression="SET body = :b",
            ExpressionAttributeValues={":b": {"S": "[]"}},
        )
        for call in (
            lambda: ddb.get_session("ses-1"),
            lambda: ddb.list_sessions(SessionFilter(), limit=5),
            ddb.list_audit,
        ):
            with pytest.raises(StoreError) as caught:
                call()
            assert caught.value.code == ErrorCode.STORE_CORRUPT
        bodies = [{k: v for k, v in b.items() if k != INDEXED} for b in ddb.audit_bodies()]
        assert bodies == [{}]  # beside the index keys, which verify checks against it
        assert verify_chain(ddb.audit_bodies())[2] is not None

    def test_lone_surrogates_are_invalid_argument(self, ddb):
        """Text DynamoDB cannot carry is INVALID_ARGUMENT, as with SQLite."""
        with pytest.raises(InvalidArgumentError):
            ddb.get_session("ses-\ud800")
        with pytest.raises(InvalidArgumentError):
            ddb.create_session(make_session("ses-1", error_summary="bad \udfff text"))


class TestLargeItems:
    def test_large_bodies_are_compressed_and_read_back(self, ddb):
        """A 600 KB record (over DynamoDB's 400 KB item limit) round-trips compressed."""
        attempt = OperationAttempt(
            attempt=1, status=RunStatus.FAILED, started_at=AT, stderr_tail="x" * 600_000
        )
        run = OperationRun(session_id="s1", job_id="a", operation_id="o", attempts=[attempt])
        ddb.put_operation_run(run)
        assert ddb.list_operation_runs("s1") == [run]
        ses = ddb.create_session(make_session("ses-1"))
        big = ses.model_copy(update={"error_summary": "y" * 500_000})
        assert ddb.update_session(big, expected_version=0).error_summary == big.error_summary
        small = ddb.update_session(
            ddb.get_session("ses-1").model_copy(update={"error_summary": "short"}),
            expected_version=1,
        )
        assert ddb.get_session("ses-1") == small

    def test_too_large_bodies_are_invalid_argument(self, ddb):
        """A record that stays too large compressed is refused with INVALID_ARGUMENT."""
        noise = base64.b64encode(os.urandom(450_000)).decode()
        attempt = OperationAttempt(
            attempt=1, status=RunStatus.FAILED, started_at=AT, stderr_tail=noise
        )
        with pytest.raises(InvalidArgumentError):
            ddb.put_operation_run(
                OperationRun(session_id="s1", job_id="a", operation_id="o", attempts=[attempt])
            )
        assert ddb.list_operation_runs("s1") == []


class TestEventFeed:
    def test_a_lost_race_leaves_a_tombstone_not_a_hole(self, ddb):
        """A CAS that loses inside its transaction buries its event seq: the feed goes on."""
        created = ddb.create_session(make_session("ses-1"))
        raw = raw_client(ddb)
        bumped = []

        def rival_writes_first(**_: Any) -> None:
            if not bumped:
                bumped.append(1)
                raw.update_item(
                    TableName="unit-sessions",
                    Key={"pk": {"S": "ses-1"}},
                    UpdateExpression="SET version = :v",
                    ExpressionAttributeValues={":v": {"N": "7"}},
                )

        store = DynamoDBStore(
            table_prefix="unit",
            session=new_session(("before-call.dynamodb.TransactWriteItems", rival_writes_first)),
        )
        with pytest.raises(ConflictError) as caught:
            store.update_session(
                created.model_copy(update={"status": SessionStatus.RUNNING}),
                expected_version=created.version,
            )
        assert not isinstance(caught.value, InvalidTransitionError)
        current = ddb.get_session("ses-1")
        assert current.status is SessionStatus.QUEUED
        ddb.update_session(
            current.model_copy(update={"status": SessionStatus.RUNNING}), expected_version=7
        )
        assert [(e.seq, e.status) for e in ddb.list_events()] == [(1, "queued"), (3, "running")]
        assert [e.seq for e in ddb.list_events(after_seq=1)] == [3]

    def test_a_hole_is_held_back_until_the_grace_passes(self, ddb):
        """A seq taken by a writer that never committed stalls the feed only for the grace."""
        ddb.create_session(make_session("ses-1"))
        raw_client(ddb).update_item(  # a writer takes seq 2 and dies
            TableName="unit-kv",
            Key={"pk": {"S": "counter:events"}, "sk": {"S": "."}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        ddb.create_session(make_session("ses-3"))
        assert [e.seq for e in ddb.list_events()] == [1]
        assert ddb.list_events(after_seq=1) == []
        assert ddb.last_event_seq() == 3
        ddb.event_hole_grace = timedelta(0)
        assert [e.seq for e in ddb.list_events()] == [1, 3]


# the same behaviour on both backends


class TestParity:
    def test_tickets(self, either):
        """One pending ticket per identical request, CAS with the ticket transition table."""
        first = either.create_ticket(make_ticket(created_at="2024-05-01T00:00:01.000000Z"))
        with pytest.raises(ConflictError):
            either.create_ticket(make_ticket())
        other = either.create_ticket(
            make_ticket(requested_by="bob", created_at="2024-05-01T00:00:02.000000Z")
        )
        assert either.find_pending_ticket("job:mark", "h1", "ai") == first
        assert either.find_pending_ticket("job:mark", "h1", "nobody") is None
        assert either.get_ticket("tkt-none") is None
        approved = either.update_ticket(
            first.model_copy(update={"status": TicketStatus.APPROVED, "decided_by": "me"}),
            expected_version=first.version,
        )
        assert (approved.version, either.get_ticket(first.ticket_id)) == (2, approved)
        assert either.find_pending_ticket("job:mark", "h1", "ai") is None
        again = either.create_ticket(make_ticket(created_at="2024-05-01T00:00:03.000000Z"))
        assert either.find_pending_ticket("job:mark", "h1", "ai") == again
        with pytest.raises(ConflictError) as stale:
            either.update_ticket(approved, expected_version=first.version)
        assert not isinstance(stale.value, InvalidTransitionError)
        with pytest.raises(InvalidTransitionError):
            either.update_ticket(
                approved.model_copy(update={"status": TicketStatus.PENDING}),
                expected_version=approved.version,
            )
        with pytest.raises(NotFoundError):
            either.update_ticket(make_ticket(), expected_version=1)
        same = either.update_ticket(
            approved.model_copy(update={"reason": "noted"}), expected_version=approved.version
        )
        assert (same.status, same.version) == (TicketStatus.APPROVED, 3)
        ids = [t.ticket_id for t in either.list_tickets()]
        assert ids == [again.ticket_id, other.ticket_id, first.ticket_id]
        assert [t.ticket_id for t in either.list_tickets(status="pending")] == [
            again.ticket_id,
            other.ticket_id,
        ]
        assert [t.ticket_id for t in either.list_tickets(requested_by="bob")] == [other.ticket_id]
        assert [t.ticket_id for t in either.list_tickets(status="pending", requested_by="ai")] == [
            again.ticket_id
        ]
        assert len(either.list_tickets(limit=1)) == 1
        assert either.list_tickets(status="nonsense") == []

    def test_audit(self, either):
        """Append-only chain; filters, after_seq and limit; head; raw bodies verify."""
        assert (either.audit_head(), either.audit_bodies(), either.list_audit()) == (None, [], [])
        events = [
            make_event(actor="ai", action="job:mark", session_id="s1"),
            make_event(actor="bob", action="job:mark"),
            make_event(actor="ai", action="session:rerun", session_id="s1"),
            make_event(actor="ai", action="job:mark", session_id="s2"),
            make_event(actor="bob", action="session:rerun", session_id="s1"),
        ]
        entries = [either.append_audit(event) for event in events]
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert entries[1].prev_hash == entries[0].hash
        assert either.list_audit() == entries
        assert either.list_audit(after_seq=3) == entries[3:]
        assert either.list_audit(limit=2) == entries[:2]

        def seqs(**filters: Any) -> list[int]:
            return [e.seq for e in either.list_audit(**filters)]

        assert seqs(actor="ai") == [1, 3, 4]
        assert seqs(action="session:rerun") == [3, 5]
        assert seqs(session_id="s1") == [1, 3, 5]
        assert seqs(session_id="s1", actor="ai") == [1, 3]
        assert seqs(actor="ai", action="job:mark") == [1, 4]
        assert seqs(actor="ai", action="job:mark", session_id="s2") == [4]
        assert seqs(actor="ai", after_seq=1, limit=1) == [3]
        assert seqs(actor="nobody") == []
        head = either.audit_head()
        assert (head.seq, head.hash) == (5, entries[-1].hash)
        assert verify_chain(either.audit_bodies()) == (5, head, None)
        assert [b["seq"] for b in either.audit_bodies(after_seq=2, limit=2)] == [3, 4]

    def test_events(self, either):
        """Session and ticket status changes, in commit order, resumable by seq."""
        assert (either.list_events(), either.last_event_seq()) == ([], 0)
        created = either.create_session(make_session("ses-1"))
        running = either.update_session(
            created.model_copy(update={"status": SessionStatus.RUNNING}),
            expected_version=created.version,
        )
        either.update_session(  # same status: no event
            running.model_copy(update={"error_summary": "x"}), expected_version=running.version
        )
        ticket = either.create_ticket(make_ticket())
        either.update_ticket(
            ticket.model_copy(update={"status": TicketStatus.REJECTED}),
            expected_version=ticket.version,
        )
        feed = [(e.seq, e.kind, e.id, e.status, e.pipeline_id) for e in either.list_events()]
        assert feed == [
            (1, EventKind.SESSION, "ses-1", "queued", "etl"),
            (2, EventKind.SESSION, "ses-1", "running", "etl"),
            (3, EventKind.TICKET, ticket.ticket_id, "pending", None),
            (4, EventKind.TICKET, ticket.ticket_id, "rejected", None),
        ]
        assert [e.seq for e in either.list_events(after_seq=2, limit=1)] == [3]
        assert either.last_event_seq() == 4
        with pytest.raises(ConflictError):
            either.create_session(make_session("ses-1"))
        assert either.last_event_seq() == 4
        assert [e.seq for e in either.list_events(after_seq=4)] == []

    def test_learning(self, either):
        """Outcomes with running totals per action; listings newest first; by error id."""
        added = [
            make_resolution("rerun", Outcome.SUCCESS, error_id="e1"),
            make_resolution("rerun", Outcome.FAILURE, error_id="e2"),
            make_resolution("increase_memory", Outcome.SUCCESS, error_id="e1"),
            make_resolution("rerun", Outcome.SUCCESS, fingerprint="fp2", code="TIMEOUT"),
        ]
        for resolution in added:
            either.add_resolution(resolution)
        with pytest.raises(ConflictError):
            either.add_resolution(added[0])
        stats = [(s.action, s.successes, s.failures) for s in either.action_stats(fingerprint="fp")]
        assert stats == [("increase_memory", 1, 0), ("rerun", 1, 1)]
        by_code = [(s.action, s.successes) for s in either.action_stats(error_code="TIMEOUT")]
        assert by_code == [("rerun", 1)]
        assert either.action_stats(fingerprint="nope") == []
        assert either.list_resolutions() == added[::-1]
        assert either.list_resolutions(fingerprint="fp", limit=2) == [added[2], added[1]]
        assert either.list_resolutions(error_code="TIMEOUT") == [added[3]]
        assert either.resolutions_of_errors(["e1", "e2", "e1"]) == [added[2], added[1], added[0]]
        assert either.resolutions_of_errors([]) == []

    def test_errors_by_fingerprint_and_reruns(self, either):
        """Most recent first, excluding a session; reruns counted per root."""
        errors = [
            ErrorRecord(session_id=f"s{i % 3}", kind=FailureKind.TIMEOUT, message="same text")
            for i in range(6)
        ]
        for error in errors:
            either.add_error(error)
        fingerprint = errors[0].fingerprint
        found = either.list_errors_by_fingerprint(fingerprint, limit=3, exclude_session_id="s2")
        assert found == [errors[4], errors[3], errors[1]]
        assert either.list_errors_by_fingerprint(fingerprint, limit=10)[0] == errors[5]
        assert either.list_errors_by_fingerprint("other", limit=3) == []
        either.create_session(make_session("root"))
        either.create_session(make_session("r1", root_session_id="root"))
        either.create_session(make_session("r2", root_session_id="root", parent_session_id="r1"))
        assert (either.count_reruns("root"), either.count_reruns("r1")) == (2, 0)

    def test_overrides_idempotency_and_plans(self, either):
        """Override versions per job in order; keys bind once; plans are replaced by id."""
        for job_id, version in [("ab", 1), ("a", 2), ("a", 1), ('a", 1', 1), ("a", 10)]:
            either.add_override_version(
                OverrideVersion(
                    session_id="s1",
                    job_id=job_id,
                    version=version,
                    override=JobOverride(memory_mb=version),
                    actor="me",
                )
            )
        with pytest.raises(ConflictError):
            either.add_override_version(
                OverrideVersion(
                    session_id="s1", job_id="a", version=2, override=JobOverride(), actor="x"
                )
            )
        listed = [(o.job_id, o.version) for o in either.list_override_versions("s1")]
        assert listed == [("a", 1), ("a", 2), ("a", 10), ('a", 1', 1), ("ab", 1)]
        only_a = [(o.job_id, o.version) for o in either.list_override_versions("s1", "a")]
        assert only_a == [("a", 1), ("a", 2), ("a", 10)]
        assert either.list_override_versions("s2") == []

        assert either.claim_idempotency_key("k", "ses-1") == "ses-1"
        assert either.claim_idempotency_key("k", "ses-2") == "ses-1"
        either.release_idempotency_key("k", "ses-2")
        assert either.find_idempotency_key("k") == "ses-1"
        either.release_idempotency_key("k", "ses-1")
        assert either.find_idempotency_key("k") is None
        assert either.claim_idempotency_key("k", "ses-2") == "ses-2"

        either.put_recovery_plan(make_plan())
        replaced = make_plan(description="other")
        either.put_recovery_plan(replaced)
        assert either.get_recovery_plan("plan-1") == replaced
        assert either.get_recovery_plan("plan-none") is None

    def test_operation_runs_of_jobs_whose_ids_share_a_prefix(self, either):
        """Filtering by job is exact even when one job id starts with another."""
        runs = [
            OperationRun(session_id="s1", job_id=job, operation_id=op)
            for job, op in [("a", "x"), ("a", "b#c"), ("a#b", "c"), ("a:b", "c")]
        ]
        for run in runs:
            either.put_operation_run(run)
        assert sorted(r.operation_id for r in either.list_operation_runs("s1", "a")) == [
            "b#c",
            "x",
        ]
        assert len(either.list_operation_runs("s1")) == 4
