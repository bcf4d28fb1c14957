"""StepFunctionsEngine against moto and the real SQLite store: start, sync, cancel, logs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bunsui_core.config import AwsSettings
from bunsui_core.diagnosis.analyzer import analyze_session
from bunsui_core.engine.stepfunctions.asl import ensure_state_machine
from bunsui_core.engine.stepfunctions.engine import StepFunctionsEngine
from bunsui_core.errors import ConflictError, InvalidArgumentError
from bunsui_core.model.session import (
    FailureKind,
    JobOverride,
    JobRun,
    RunStatus,
    Session,
    SessionStatus,
    new_id,
)
from bunsui_core.store.base import update_session
from bunsui_core.store.sqlite import SqliteStore
from tests.unit.engine.stepfunctions.sfn_support import (
    OOM_REASON,
    ROLE_ARN,
    ecs_job,
    ecs_tasks_fail,
    ecs_tasks_succeed,
    function_arn,
    lambda_job,
    pipeline,
    task_definition_arn,
    tasks_sleep,
    wait_for,
    wait_for_event,
)

FN = function_arn("worker", region="us-east-1", account="123456789012")
TD = task_definition_arn("etl-transform:7", region="us-east-1", account="123456789012")
ETL = pipeline(
    "etl",
    lambda_job("extract", FN),
    ecs_job("transform", TD, deps=["extract"], parameters={"memory": 2048, "cpu": 1024}),
    lambda_job("load", FN, deps=["transform"]),
)
AWS = AwsSettings(
    region="us-east-1",
    state_machine_role_arn=ROLE_ARN,
    ecs_cluster="bunsui",
    ecs_subnets=("subnet-0c1d2e3f4a5b6c7d8",),
    ecs_security_groups=("sg-0123456789abcdef0",),
)


@pytest.fixture
def db(tmp_path) -> SqliteStore:
    opened = SqliteStore(tmp_path / "x.db")
    yield opened
    opened.close()


def new_engine(db: SqliteStore, sfn: Any, logs: Any = None, **options: Any) -> StepFunctionsEngine:
    options.setdefault("task_state_override", ecs_tasks_succeed)
    return StepFunctionsEngine(db, sfn, logs, aws=options.pop("aws", AWS), **options)


def queued(db: SqliteStore, p: Any = ETL, **fields: Any) -> Session:
    version = db.register_pipeline("etl", p)
    return db.create_session(
        Session(
            session_id=new_id("ses"),
            pipeline_id=version.pipeline_id,
            pipeline_version=version.version,
            pipeline_name=p.name,
            status=SessionStatus.QUEUED,
            **fields,
        )
    )


def run_to_end(engine: StepFunctionsEngine, session: Session) -> Session:
    engine.start(session)
    wait_for(engine.sfn, engine.execution_arns[session.session_id])
    return engine.sync(session.session_id)


def now_ms() -> int:
    """CloudWatch Logs drops events older than its retention window: log them as of now."""
    return int(time.time() * 1000)


def job_statuses(db: SqliteStore, session_id: str) -> dict[str, RunStatus]:
    return {r.job_id: r.status for r in db.list_job_runs(session_id)}


class TestStart:
    def test_start_deploys_the_versions_machine_and_runs_the_session(self, db, sfn):
        """bunsui-<pipeline>-v<version>, one execution named after the session, input with
        the per-job config; the session is running and every job pending."""
        engine = new_engine(db, sfn)
        session = queued(db)
        started = engine.start(session)
        assert started.status is SessionStatus.RUNNING
        assert started.started_at is not None
        machines = sfn.list_state_machines()["stateMachines"]
        assert [m["name"] for m in machines] == ["bunsui-etl-v1"]
        arn = engine.execution_arns[session.session_id]
        assert arn.endswith(f":execution:bunsui-etl-v1:{session.session_id}")
        described = sfn.describe_execution(executionArn=arn)
        sent = json.loads(described["input"])
        assert sent["session_id"] == session.session_id
        assert sent["config"]["transform"]["task"]["overrides"]["Memory"] == "2048"
        assert set(job_statuses(db, session.session_id).values()) == {RunStatus.PENDING}
        wait_for(sfn, arn)

    def test_a_session_starts_once(self, db, sfn):
        """Starting a running session again is a conflict, not a second execution."""
        engine = new_engine(db, sfn)
        session = queued(db)
        engine.start(session)
        with pytest.raises(ConflictError):
            engine.start(session.session_id)
        assert len(sfn.list_executions(stateMachineArn=_machine(sfn))["executions"]) == 1
        wait_for(sfn, engine.execution_arns[session.session_id])

    def test_an_execution_started_before_a_crash_is_adopted(self, db, sfn):
        """The execution exists but the session is still queued: start takes it over."""
        engine = new_engine(db, sfn)
        session = queued(db)
        machine = engine.deploy(db.get_pipeline("etl"))
        already = sfn.start_execution(
            stateMachineArn=machine.arn,
            name=session.session_id,
            input=json.dumps({"something": "else"}),
        )["executionArn"]
        wait_for(sfn, already)
        started = engine.start(session)
        assert started.status is SessionStatus.RUNNING
        assert engine.execution_arns[session.session_id] == already
        assert len(sfn.list_executions(stateMachineArn=machine.arn)["executions"]) == 1

    def test_the_machine_is_deployed_once_and_updated_when_it_changes(self, db, sfn):
        """A second session reuses the machine; new settings update it in place."""
        engine = new_engine(db, sfn)
        version = db.register_pipeline("etl", ETL)
        first = engine.deploy(version)
        assert first.action == "created"
        assert engine.deploy(version).action == "unchanged"
        moved = new_engine(db, sfn, aws=AwsSettings(**{**AWS.__dict__, "ecs_cluster": "other"}))
        moved.task_state_override = None
        again = moved.deploy(version)
        assert (again.arn, again.action) == (first.arn, "updated")
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=first.arn)["definition"])
        assert definition["States"]["op:transform:task"]["Parameters"]["Cluster"] == "other"
        same = ensure_state_machine(
            sfn, name="bunsui-etl-v1", definition=definition, role_arn=ROLE_ARN
        )
        assert same.action == "unchanged"

    def test_a_start_aws_refuses_fails_the_session_with_the_reason(self, db, sfn):
        """An invalid definition is refused at create time: the session fails, with why."""
        engine = new_engine(db, sfn, task_state_override=lambda _j, _o, _s: {"Type": "Bogus"})
        session = queued(db)
        ended = engine.start(session)
        assert ended.status is SessionStatus.FAILED
        (error,) = db.list_errors(session.session_id)
        assert error.kind is FailureKind.SPAWN_FAILED
        assert error.message.startswith("Step Functions did not start the execution")

    def test_without_a_role_nothing_is_started(self, db, sfn):
        """The state machine role is configuration: missing, it is an invalid argument."""
        engine = new_engine(db, sfn, aws=AwsSettings(region="us-east-1", ecs_cluster="bunsui"))
        session = queued(db)
        with pytest.raises(InvalidArgumentError, match="state_machine_role_arn"):
            engine.start(session)
        assert db.get_session(session.session_id).status is SessionStatus.QUEUED


def _machine(sfn: Any) -> str:
    return sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]


class TestSync:
    def test_a_successful_execution_completes_the_session(self, db, sfn):
        """Every job and operation completed, one attempt each, no errors."""
        engine = new_engine(db, sfn)
        session = queued(db)
        final = run_to_end(engine, session)
        assert final.status is SessionStatus.COMPLETED
        assert final.finished_at is not None
        assert final.error_summary is None
        assert set(job_statuses(db, session.session_id).values()) == {RunStatus.COMPLETED}
        ops = db.list_operation_runs(session.session_id)
        assert {(o.job_id, o.status) for o in ops} == {
            ("extract", RunStatus.COMPLETED),
            ("transform", RunStatus.COMPLETED),
            ("load", RunStatus.COMPLETED),
        }
        assert db.list_errors(session.session_id) == []

    def test_a_failed_execution_records_the_error_the_analyzer_classifies(self, db, sfn):
        """transform's OOM: session failed, load blocked, the error classified as ECS
        memory with an increase-memory suggestion first."""
        engine = new_engine(db, sfn, task_state_override=ecs_tasks_fail)
        session = queued(db)
        final = run_to_end(engine, session)
        assert final.status is SessionStatus.FAILED
        assert final.failed_jobs == ["transform"]
        assert OOM_REASON in final.error_summary
        assert job_statuses(db, session.session_id) == {
            "extract": RunStatus.COMPLETED,
            "transform": RunStatus.FAILED,
            "load": RunStatus.UPSTREAM_FAILED,
        }
        (error,) = db.list_errors(session.session_id)
        assert error.context["container_limit_mb"] == 2048
        analysis = analyze_session(db, final, ETL)
        (analyzed,) = analysis.errors
        assert analyzed.error_code == "ECS_OUT_OF_MEMORY"
        assert analyzed.recovery_suggestions[0].action == "increase_memory"
        assert "--memory" in analyzed.recovery_suggestions[0].command

    def test_syncing_again_changes_nothing(self, db, sfn):
        """Error ids come from the history: a second sync adds no record, bumps no version."""
        engine = new_engine(db, sfn, task_state_override=ecs_tasks_fail)
        session = queued(db)
        first = run_to_end(engine, session)
        again = engine.sync(session.session_id)
        assert again.version == first.version
        assert len(db.list_errors(session.session_id)) == 1

    def test_a_fresh_engine_finds_the_execution_by_name(self, db, sfn):
        """The ARN cache is only a cache: the execution is derived from the machine name."""
        engine = new_engine(db, sfn)
        session = queued(db)
        engine.start(session)
        wait_for(sfn, engine.execution_arns[session.session_id])
        other = new_engine(db, sfn)
        assert other.sync(session.session_id).status is SessionStatus.COMPLETED

    def test_a_rerun_skips_jobs_and_runs_with_its_overrides(self, db, sfn):
        """The skip list and the override reach the execution; the skipped job's record,
        written when the rerun was created, stays as it was."""
        engine = new_engine(db, sfn)
        rerun = queued(
            db,
            skipped_jobs=["extract"],
            config_overrides={"transform": JobOverride(memory_mb=4096)},
        )
        kept = JobRun(
            session_id=rerun.session_id,
            job_id="extract",
            status=RunStatus.SKIPPED,
            skipped_reason="succeeded in ses-000000000001",
        )
        db.put_job_run(kept)
        final = run_to_end(engine, rerun)
        assert final.status is SessionStatus.COMPLETED
        runs = {r.job_id: r for r in db.list_job_runs(rerun.session_id)}
        assert runs["extract"] == kept
        assert runs["transform"].status is RunStatus.COMPLETED
        sent = json.loads(
            sfn.describe_execution(executionArn=engine.execution_arns[rerun.session_id])["input"]
        )
        assert sent["skip"] == {"extract": True}
        assert sent["config"]["transform"]["task"]["overrides"]["Memory"] == "4096"
        assert {o.job_id for o in db.list_operation_runs(rerun.session_id)} == {
            "transform",
            "load",
        }


class TestCancel:
    def test_a_session_cancelled_in_bunsui_stops_its_execution(self, db, sfn):
        """The CLI cancels in the store; the next sync stops the execution and closes runs."""
        engine = new_engine(db, sfn, task_state_override=tasks_sleep(60))
        session = queued(db)
        engine.start(session)
        wait_for_event(sfn, engine.execution_arns[session.session_id], "WaitStateEntered")
        update_session(
            db,
            session.session_id,
            lambda s: s.model_copy(update={"status": SessionStatus.CANCELLED}),
        )
        final = engine.sync(session.session_id)
        assert final.status is SessionStatus.CANCELLED
        arn = engine.execution_arns[session.session_id]
        assert wait_for(sfn, arn)["status"] == "ABORTED"
        final = engine.sync(session.session_id)
        assert final.status is SessionStatus.CANCELLED
        statuses = job_statuses(db, session.session_id)
        assert statuses["extract"] is RunStatus.CANCELLED
        assert statuses["load"] is RunStatus.CANCELLED
        assert db.list_errors(session.session_id) == []

    def test_stop_cancels_and_aborts(self, db, sfn):
        """engine.stop: the execution aborted, the session cancelled."""
        engine = new_engine(db, sfn, task_state_override=tasks_sleep(60))
        session = queued(db)
        engine.start(session)
        wait_for_event(sfn, engine.execution_arns[session.session_id], "WaitStateEntered")
        final = engine.stop(session.session_id)
        assert final.status is SessionStatus.CANCELLED
        arn = engine.execution_arns[session.session_id]
        assert wait_for(sfn, arn)["status"] == "ABORTED"
        engine.sync(session.session_id)
        (extract,) = db.list_operation_runs(session.session_id, "extract")
        assert extract.status is RunStatus.CANCELLED


class TestJobLogs:
    def test_lambda_and_ecs_log_tails(self, db, sfn, logs):
        """Lambda: /aws/lambda/<function>; ECS: the failed task's awslogs stream."""
        engine = new_engine(db, sfn, logs, task_state_override=ecs_tasks_fail)
        session = queued(db)
        run_to_end(engine, session)
        logs.create_log_group(logGroupName="/aws/lambda/worker")
        logs.create_log_stream(logGroupName="/aws/lambda/worker", logStreamName="2024/05/14/a")
        logs.put_log_events(
            logGroupName="/aws/lambda/worker",
            logStreamName="2024/05/14/a",
            logEvents=[{"timestamp": now_ms() + i, "message": f"line {i}"} for i in range(5)],
        )
        [(operation, extract)] = engine.job_logs(session.session_id, "extract", limit=2)
        assert operation == "run"
        assert (extract.log_group, extract.lines) == ("/aws/lambda/worker", ["line 3", "line 4"])
        group = "/bunsui/etl"
        stream = "bunsui/main/transform0f1e2d3c4b5a"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now_ms(), "message": "Killed"}],
        )
        [(operation, transform)] = engine.job_logs(session.session_id, "transform")
        assert operation == "task"
        assert (transform.log_stream, transform.lines) == (stream, ["Killed"])
        assert engine.job_logs(session.session_id, "load") == []
