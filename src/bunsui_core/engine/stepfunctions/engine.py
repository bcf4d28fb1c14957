"""The Step Functions engine: a session is one execution of its pipeline version's state machine.

`start` deploys the state machine (idempotently) and starts an execution named after the
session; `sync` reads the execution's status and full history and writes what happened into
the store: job and operation runs, error records, and the session's status (compare-and-set,
like the local engine). Reading AWS never changes AWS, except that a session cancelled in
bunsui has its still-running execution stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bunsui_core.config import AwsSettings, Settings
from bunsui_core.diagnosis.learning import record_rerun_outcome
from bunsui_core.engine.local import summarize_error
from bunsui_core.engine.stepfunctions.asl import (
    DEFAULT_CONTAINER,
    StateMachineRef,
    TaskStateOverride,
    compile_pipeline,
    ensure_state_machine,
    execution_arn,
    execution_input,
    state_machine_name,
)
from bunsui_core.engine.stepfunctions.history import (
    FoldedHistory,
    ecs_task_arns,
    event_time,
    fold_history,
)
from bunsui_core.engine.stepfunctions.logs import (
    DEFAULT_TAIL_LINES,
    LogTail,
    ecs_log_stream,
    lambda_log_group,
    log_tail,
)
from bunsui_core.errors import ConflictError, EngineError, InvalidArgumentError, NotFoundError
from bunsui_core.model.pipeline import OperationType, Pipeline
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobRun,
    RunStatus,
    Session,
    SessionStatus,
    utc_now,
)
from bunsui_core.store.base import PipelineVersion, Store, update_session

ProgressCallback = Callable[[str], None]

SESSION_STATUS: dict[str, SessionStatus] = {
    "RUNNING": SessionStatus.RUNNING,
    "SUCCEEDED": SessionStatus.COMPLETED,
    "FAILED": SessionStatus.FAILED,
    "TIMED_OUT": SessionStatus.TIMEOUT,
    "ABORTED": SessionStatus.CANCELLED,
    "PENDING_REDRIVE": SessionStatus.FAILED,
}
"""Execution status -> session status."""
HISTORY_PAGE_SIZE = 1000
DEFAULT_ECS_STREAM_PREFIX = "bunsui"
CANCEL_ERROR = "bunsui.Cancelled"


@dataclass(frozen=True)
class Clients:
    """The AWS clients the engine talks to."""

    stepfunctions: Any
    logs: Any


def aws_clients(aws: AwsSettings) -> Clients:
    """boto3 clients for these settings; credentials come from boto3's own chain only."""
    import boto3  # noqa: PLC0415 - only the AWS backend pays for boto3

    session = boto3.session.Session(region_name=aws.region)
    options = {"endpoint_url": aws.endpoint_url} if aws.endpoint_url else {}
    return Clients(session.client("stepfunctions", **options), session.client("logs", **options))


class StepFunctionsEngine:
    """Starts sessions as Step Functions executions and folds their histories back."""

    def __init__(
        self,
        store: Store,
        sfn: Any,
        logs: Any = None,
        *,
        aws: AwsSettings,
        execution_arns: MutableMapping[str, str] | None = None,
        task_state_override: TaskStateOverride | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.store = store
        self.sfn = sfn
        self.logs = logs
        self.aws = aws
        self.execution_arns: MutableMapping[str, str] = (
            {} if execution_arns is None else execution_arns
        )
        """Session id -> execution ARN. A cache: the ARN can always be derived again."""
        self.task_state_override = task_state_override
        self.progress = progress or (lambda _message: None)

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> StepFunctionsEngine:
        """The engine for `backend: aws`, with boto3 clients from the settings."""
        clients = aws_clients(settings.aws)
        return cls(store, clients.stepfunctions, clients.logs, aws=settings.aws)

    # ---- deploying and starting

    def _version(self, session: Session) -> PipelineVersion:
        version = self.store.get_pipeline(session.pipeline_id, session.pipeline_version)
        if version is None:
            raise NotFoundError(
                f"pipeline {session.pipeline_id} v{session.pipeline_version} not found",
                details={"pipeline_id": session.pipeline_id},
            )
        return version

    def _session(self, session_id: str) -> Session:
        session = self.store.get_session(session_id)
        if session is None:
            raise NotFoundError(
                f"session {session_id} not found", details={"session_id": session_id}
            )
        return session

    def definition(self, pipeline: Pipeline) -> dict[str, Any]:
        """The ASL this engine deploys for a pipeline version."""
        return compile_pipeline(
            pipeline,
            cluster=self.aws.ecs_cluster,
            subnets=self.aws.ecs_subnets,
            security_groups=self.aws.ecs_security_groups,
            task_state_override=self.task_state_override,
        )

    def deploy(self, version: PipelineVersion) -> StateMachineRef:
        """Create or update the version's state machine (nothing when it is up to date)."""
        role = self.aws.state_machine_role_arn
        if not role:
            raise InvalidArgumentError(
                "aws.state_machine_role_arn is not set: Step Functions needs a role to run as",
                details={"field": "state_machine_role_arn"},
            )
        return ensure_state_machine(
            self.sfn,
            name=state_machine_name(version.pipeline_id, version.version),
            definition=self.definition(version.pipeline),
            role_arn=role,
            tags={"bunsui:pipeline": version.pipeline_id, "bunsui:version": str(version.version)},
        )

    def start(self, session: Session | str) -> Session:
        """Start the session's execution (named by the session id) and mark it running.

        Starting again with the same input returns the same execution (AWS treats equal
        name and input as one request), so a retried start never runs the pipeline twice.
        A session AWS refuses to start ends failed with the refusal as its error.
        """
        current = self._session(session if isinstance(session, str) else session.session_id)
        if current.status not in {SessionStatus.CREATED, SessionStatus.QUEUED}:
            raise ConflictError(
                f"session {current.session_id} is {current.status}; only a new session starts",
                details={"session_id": current.session_id, "status": str(current.status)},
            )
        version = self._version(current)
        payload = execution_input(current, version.pipeline)
        try:
            machine = self.deploy(version)
            started = self._start_execution(machine.arn, current.session_id, payload)
        except EngineError as exc:
            return self._refused(current, exc.message)
        except (ClientError, BotoCoreError) as exc:
            return self._refused(current, str(exc))
        arn = str(started["executionArn"])
        self.execution_arns[current.session_id] = arn
        self._put_pending_runs(current, version.pipeline)
        started_at = event_time(started["startDate"])
        self.progress(f"session {current.session_id}: execution {arn}")

        def claim(latest: Session) -> Session:
            update: dict[str, Any] = {"status": SessionStatus.RUNNING, "started_at": started_at}
            if "execution_arn" in Session.model_fields:
                # Written once the model has the field (see the package docs); cached until then.
                update["execution_arn"] = arn
            return latest.model_copy(update=update)

        return update_session(self.store, current.session_id, claim)

    def _start_execution(
        self, machine_arn: str, session_id: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """StartExecution; an execution this session already started (a start that died
        before it marked the session running) is adopted, not started twice."""
        try:
            return dict(
                self.sfn.start_execution(
                    stateMachineArn=machine_arn,
                    name=session_id,
                    input=json.dumps(payload, sort_keys=True),
                )
            )
        except self.sfn.exceptions.ExecutionAlreadyExists:
            arn = execution_arn(machine_arn, session_id)
            return dict(self.sfn.describe_execution(executionArn=arn))

    def _put_pending_runs(self, session: Session, pipeline: Pipeline) -> None:
        """Every job pending, except those a rerun recorded as skipped when it was created."""
        recorded = {r.job_id for r in self.store.list_job_runs(session.session_id)}
        for job in pipeline.jobs:
            if job.job_id in session.skipped_jobs and job.job_id in recorded:
                continue
            self.store.put_job_run(JobRun(session_id=session.session_id, job_id=job.job_id))

    def _refused(self, session: Session, reason: str) -> Session:
        self.store.add_error(
            ErrorRecord(
                session_id=session.session_id,
                kind=FailureKind.SPAWN_FAILED,
                message=f"Step Functions did not start the execution: {reason}",
                context={"engine": "stepfunctions"},
            )
        )
        return update_session(
            self.store,
            session.session_id,
            lambda s: s.model_copy(
                update={
                    "status": SessionStatus.FAILED,
                    "finished_at": utc_now(),
                    "error_summary": f"execution not started: {reason}"[:240],
                }
            ),
        )

    # ---- following an execution

    def execution_arn_of(self, session: Session) -> str:
        """The session's execution: recorded on the session, cached, or derived by name."""
        recorded = getattr(session, "execution_arn", None) or self.execution_arns.get(
            session.session_id
        )
        if recorded:
            return str(recorded)
        name = state_machine_name(session.pipeline_id, session.pipeline_version)
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                if machine["name"] == name:
                    arn = execution_arn(machine["stateMachineArn"], session.session_id)
                    self.execution_arns[session.session_id] = arn
                    return arn
        raise NotFoundError(
            f"session {session.session_id} has no Step Functions execution",
            details={"session_id": session.session_id, "state_machine": name},
        )

    def history(self, arn: str) -> list[dict[str, Any]]:
        """Every event of the execution, oldest first (all pages)."""
        events: list[dict[str, Any]] = []
        paginator = self.sfn.get_paginator("get_execution_history")
        pages = paginator.paginate(
            executionArn=arn,
            includeExecutionData=True,
            PaginationConfig={"PageSize": HISTORY_PAGE_SIZE},
        )
        for page in pages:
            events.extend(page["events"])
        return events

    def sync(self, session_id: str) -> Session:
        """Bring the store up to date with the execution; returns the session as stored."""
        session = self._session(session_id)
        arn = self.execution_arn_of(session)
        described = self.sfn.describe_execution(executionArn=arn)
        if session.status is SessionStatus.CANCELLED and described["status"] == "RUNNING":
            self.sfn.stop_execution(
                executionArn=arn, error=CANCEL_ERROR, cause="cancelled in bunsui"
            )
            described = self.sfn.describe_execution(executionArn=arn)
        version = self._version(session)
        folded = fold_history(
            self.history(arn), session_id=session_id, pipeline=version.pipeline, execution_arn=arn
        )
        self._write_runs(session, folded)
        self._write_errors(session_id, folded)
        return self._write_status(session_id, described)

    def _write_runs(self, session: Session, folded: FoldedHistory) -> None:
        """Write what changed; runs a rerun pre-recorded or a person marked stay as they are."""
        existing = {r.job_id: r for r in self.store.list_job_runs(session.session_id)}
        for run in folded.job_runs:
            before = existing.get(run.job_id)
            if before is not None and (
                before.marked_by
                or (run.job_id in session.skipped_jobs and before.status is RunStatus.SKIPPED)
            ):
                continue
            if before != run:
                self.store.put_job_run(run)
        operations = {
            (r.job_id, r.operation_id): r
            for r in self.store.list_operation_runs(session.session_id)
        }
        for op_run in folded.operation_runs:
            if operations.get((op_run.job_id, op_run.operation_id)) != op_run:
                self.store.put_operation_run(op_run)

    def _write_errors(self, session_id: str, folded: FoldedHistory) -> None:
        """Errors are append-only; their ids derive from the history, so none is added twice."""
        known = {e.error_id for e in self.store.list_errors(session_id)}
        for error in folded.errors:
            if error.error_id not in known:
                self.store.add_error(error)

    def _write_status(self, session_id: str, described: dict[str, Any]) -> Session:
        target = SESSION_STATUS.get(str(described["status"]), SessionStatus.RUNNING)
        runs = self.store.list_job_runs(session_id)
        failed = sorted(r.job_id for r in runs if r.status in {RunStatus.FAILED, RunStatus.TIMEOUT})
        errors = self.store.list_errors(session_id)
        # The execution fails with one job's error (`bunsui.`-prefixed when reserved).
        failed_with = str(described.get("error") or "").removeprefix("bunsui.")
        headline = next(
            (e for e in errors if e.context.get("aws_error") == failed_with),
            errors[-1] if errors else None,
        )
        finished_at = event_time(described["stopDate"]) if described.get("stopDate") else None

        def advance(current: Session) -> Session:
            if current.status.is_terminal or current.status is target:
                return current
            if current.status in {SessionStatus.CREATED, SessionStatus.QUEUED}:
                return current.model_copy(update={"status": SessionStatus.RUNNING})
            return current.model_copy(
                update={
                    "status": target,
                    "finished_at": finished_at or utc_now(),
                    "failed_jobs": failed,
                    "error_summary": summarize_error(headline)
                    if headline is not None and target is not SessionStatus.COMPLETED
                    else None,
                }
            )

        before = self._session(session_id)
        final = update_session(self.store, session_id, advance)
        if final.status is not target and not final.status.is_terminal:
            final = update_session(self.store, session_id, advance)
        if final.status.is_terminal and not before.status.is_terminal:
            record_rerun_outcome(self.store, final)
            self.progress(f"session {session_id}: {final.status}")
        return final

    def stop(self, session_id: str, *, reason: str = "cancelled in bunsui") -> Session:
        """Stop the execution and cancel the session (its runs are closed by the next sync)."""
        session = self._session(session_id)
        arn = self.execution_arn_of(session)
        self.sfn.stop_execution(executionArn=arn, error=CANCEL_ERROR, cause=reason)

        def cancel(current: Session) -> Session:
            if current.status.is_terminal:
                return current
            return current.model_copy(
                update={"status": SessionStatus.CANCELLED, "finished_at": utc_now()}
            )

        update_session(self.store, session_id, cancel)
        return self.sync(session_id)

    # ---- logs

    def job_logs(
        self, session_id: str, job_id: str, *, limit: int = DEFAULT_TAIL_LINES
    ) -> list[tuple[str, LogTail]]:
        """(operation_id, log tail) of each operation of the job that ran, in operation order.

        Lambda: the function's group `/aws/lambda/<name>`, newest stream. ECS: the task's
        `awslogs` stream, `<log_stream_prefix>/<container_name>/<task id>` in `log_group`
        (operation parameters; defaults `<aws.log_group_prefix>/<pipeline_id>` and "bunsui").
        """
        if self.logs is None:
            raise InvalidArgumentError("this engine was built without a CloudWatch Logs client")
        session = self._session(session_id)
        pipeline = self._version(session).pipeline
        ran = {
            r.operation_id for r in self.store.list_operation_runs(session_id, job_id) if r.attempts
        }
        tasks: dict[tuple[str, str], str] | None = None
        tails = []
        for op in pipeline.job(job_id).operations:
            if op.operation_id not in ran:
                continue
            parameters = op.config.parameters
            if op.config.operation_type is OperationType.LAMBDA:
                group = lambda_log_group(op.config.resource_arn or "")
                tails.append((op.operation_id, log_tail(self.logs, group, "", limit)))
                continue
            if tasks is None:
                tasks = ecs_task_arns(
                    self.history(self.execution_arn_of(session)), pipeline=pipeline
                )
            task_arn = tasks.get((job_id, op.operation_id))
            group = str(
                parameters.get("log_group", f"{self.aws.log_group_prefix}/{session.pipeline_id}")
            )
            if task_arn is None:
                tails.append((op.operation_id, LogTail(group)))
                continue
            stream = ecs_log_stream(
                str(parameters.get("log_stream_prefix", DEFAULT_ECS_STREAM_PREFIX)),
                str(parameters.get("container_name", DEFAULT_CONTAINER)),
                task_arn,
            )
            tails.append((op.operation_id, log_tail(self.logs, group, stream, limit)))
        return tails
