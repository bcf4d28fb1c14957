"""Folding a Step Functions execution history into job runs, operation runs and error records.

The history is read as AWS returns it from `GetExecutionHistory` (boto3 datetimes, or the
ISO text / epoch numbers of the CLI and raw API). Events of parallel branches interleave, so
each event is placed in its state by following `previousEventId`. Errors keep the service's
own error and cause (the ECS task description a `runTask.sync` failure carries, the Lambda
error payload) and the facts the analyzer needs, parsed out of them.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from bunsui_core.engine.stepfunctions.asl import (
    StateRef,
    StateRole,
    input_key,
    parse_state_name,
    state_index,
)
from bunsui_core.model.pipeline import OperationType, Pipeline
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobRun,
    OperationAttempt,
    OperationRun,
    RunStatus,
)
from bunsui_core.model.timestamps import UTC_FORMAT, seconds_between

SIGNAL_EXIT_BASE = 128
"""A container exit code above this means the process was killed by signal (code - 128)."""
LAMBDA_UNKNOWN_PREFIX = "Returned payload: "
TIMEOUT_ERROR = "States.Timeout"
FAIL_ROLES = frozenset({StateRole.FAIL, StateRole.FAIL_RESERVED, StateRole.FAIL_WITHOUT_CAUSE})


class FoldedHistory(NamedTuple):
    """What an execution history says happened, as bunsui records."""

    job_runs: list[JobRun]
    operation_runs: list[OperationRun]
    errors: list[ErrorRecord]


@dataclass(frozen=True)
class TaskFailure:
    """The analyzer's view of one failed task: a FailureKind, a message and run facts."""

    kind: FailureKind
    message: str
    context: dict[str, Any]


def event_time(value: Any) -> str:
    """An event timestamp as bunsui's fixed-width UTC text."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = datetime.fromisoformat(str(value))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _details(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's one `...EventDetails` member ({} when it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _field(record: Mapping[str, Any], name: str) -> Any:
    """`Name` (Step Functions renders service output in PascalCase) or `name` (the SDK)."""
    if name in record:
        return record[name]
    return record.get(name[0].lower() + name[1:])


def _short_name(arn: str | None, marker: str) -> str | None:
    """The name after `marker` in an ARN: `:function:` (qualifier dropped), `cluster/`,
    `task-definition/` (revision kept); a plain name is returned as it is."""
    if not arn:
        return None
    tail = arn.split(marker, 1)[1] if marker in arn else arn
    return tail.split(":")[0] if marker == ":function:" else tail


def _compact(context: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if v is not None and v != ""}


# ---- failures --------------------------------------------------------------------------------


def _failing_container(containers: list[dict[str, Any]]) -> dict[str, Any]:
    """The container that explains a stopped task: non-zero exit, else one with a reason."""
    for container in containers:
        if _field(container, "ExitCode") not in (None, 0):
            return container
    for container in containers:
        if _field(container, "Reason"):
            return container
    return containers[0] if containers else {}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def ecs_failure(error: str, task: Mapping[str, Any]) -> TaskFailure:
    """A stopped ECS task (the `runTask.sync` cause): stopped reason, container exit, limits."""
    container = _failing_container(list(_field(task, "Containers") or []))
    name = _field(container, "Name")
    exit_code = _int_or_none(_field(container, "ExitCode"))
    reason = _field(container, "Reason")
    stopped_reason = _field(task, "StoppedReason") or "no stopped reason given"
    task_definition_arn = _field(task, "TaskDefinitionArn")
    cluster_arn = _field(task, "ClusterArn")
    # Fargate sizes the task; else the container's override, else its definition's limit.
    memory = _int_or_none(_field(task, "Memory"))
    overrides = _field(task, "Overrides") or {}
    for override in _field(overrides, "ContainerOverrides") or []:
        if _field(override, "Name") == name and memory is None:
            memory = _int_or_none(_field(override, "Memory"))
    if memory is None:
        memory = _int_or_none(_field(container, "Memory"))
    lines = [f"ECS task stopped ({error}): {stopped_reason}"]
    if task_definition_arn or cluster_arn:
        lines.append(f"task definition {task_definition_arn} on cluster {cluster_arn}")
    if memory is not None:
        lines.append(f"task memory {memory} MiB, cpu {_field(task, 'Cpu')} units")
    if name is not None:
        ending = f"exited with code {exit_code}" if exit_code is not None else "did not exit"
        lines.append(f"container {name} {ending}" + (f": {reason}" if reason else ""))
    killed = exit_code is not None and exit_code > SIGNAL_EXIT_BASE
    signal_number = exit_code - SIGNAL_EXIT_BASE if killed and exit_code is not None else None
    signal_name = None
    if signal_number is not None:
        try:
            signal_name = signal.Signals(signal_number).name
        except ValueError:
            signal_name = None
    context = {
        "aws_error": error,
        "task_arn": _field(task, "TaskArn"),
        "task_definition": _short_name(task_definition_arn, "task-definition/"),
        "task_definition_arn": task_definition_arn,
        "cluster": _short_name(cluster_arn, "cluster/"),
        "cluster_arn": cluster_arn,
        "stopped_reason": _field(task, "StoppedReason"),
        "stop_code": _field(task, "StopCode"),
        "container_name": name,
        "container_reason": reason,
        "exit_code": exit_code,
        "signal": signal_number,
        "signal_name": signal_name,
        # Not `memory_limit_mb`: the catalog reads that key as the local engine's own limit.
        "container_limit_mb": memory,
        "cpu": _int_or_none(_field(task, "Cpu")),
    }
    kind = FailureKind.KILLED_BY_SIGNAL if killed else FailureKind.EXIT_NONZERO
    return TaskFailure(kind, "\n".join(lines), _compact(context))


def _lambda_error_payload(cause: str) -> dict[str, Any]:
    """The function's error object: the cause itself (handled errors) or the payload inside
    a `Lambda.Unknown` cause ("... Returned payload: {...}")."""
    parsed = _json(cause)
    if isinstance(parsed, dict):
        return parsed
    if LAMBDA_UNKNOWN_PREFIX in cause:
        inner = _json(cause.split(LAMBDA_UNKNOWN_PREFIX, 1)[1].strip())
        if isinstance(inner, dict):
            return inner
    return {}


def lambda_failure(error: str, cause: str, function: str | None) -> TaskFailure:
    """A failed Lambda invocation: the function's error type, message and stack trace."""
    payload = _lambda_error_payload(cause)
    name = _short_name(function, ":function:")
    lines = [f"Lambda function {name or '(unknown)'} failed ({error})"]
    error_type = payload.get("errorType")
    if payload and not isinstance(_json(cause), dict):
        # Lambda.Unknown: Step Functions' own sentence comes before the function's payload.
        lines.append(cause.split(LAMBDA_UNKNOWN_PREFIX, 1)[0].strip())
    if payload:
        for frame in payload.get("stackTrace") or []:
            lines.append(" ".join(map(str, frame)) if isinstance(frame, list) else str(frame))
        message = str(payload.get("errorMessage", "")).strip()
        # The function's own message last: listings show a failure's first and last line.
        lines.append(f"{error_type}: {message}" if error_type else message)
    elif cause.strip():
        lines.append(cause.strip())
    context = {
        "aws_error": error,
        "error_type": error_type,
        "function": name,
        "function_arn": function if function and function.startswith("arn:") else None,
    }
    return TaskFailure(FailureKind.EXIT_NONZERO, "\n".join(lines), _compact(context))


def task_failure(
    error: str,
    cause: str,
    *,
    resource_type: str | None,
    parameters: Mapping[str, Any] | None = None,
    where: str = "",
) -> TaskFailure:
    """Read a TaskFailed's error and cause the way its service writes them.

    A Lambda timeout ("Task timed out after ...") is the function's own configured limit and
    stays EXIT_NONZERO; TIMEOUT is kept for Step Functions' TimeoutSeconds, the operation's
    timeout_seconds that `job update-config --timeout` changes.
    """
    parameters = parameters or {}
    cause = cause or ""
    task = _json(cause)
    if isinstance(task, dict) and (_field(task, "TaskArn") or _field(task, "Containers")):
        return ecs_failure(error, task)
    if resource_type == "lambda":
        return lambda_failure(error, cause, parameters.get("FunctionName"))
    kind = FailureKind.TIMEOUT if error == TIMEOUT_ERROR else FailureKind.EXIT_NONZERO
    text = f"{where} failed ({error})" if where else f"Task failed ({error})"
    message = f"{text}: {cause.strip()}" if cause.strip() else text
    return TaskFailure(kind, message, {"aws_error": error})


def _scheduled_context(resource_type: str | None, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Where a task ran, from the parameters it was scheduled with."""
    if resource_type == "lambda":
        function = parameters.get("FunctionName")
        return _compact({"function": _short_name(function, ":function:")})
    if resource_type == "ecs":
        overrides = parameters.get("Overrides") or {}
        return _compact(
            {
                "task_definition": _short_name(
                    parameters.get("TaskDefinition"), "task-definition/"
                ),
                "cluster": _short_name(parameters.get("Cluster"), "cluster/"),
                "container_limit_mb": _int_or_none(overrides.get("Memory")),
            }
        )
    return {}


# ---- folding -----------------------------------------------------------------------------------


@dataclass
class _Attempt:
    record: OperationAttempt
    resource_type: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    error_recorded: bool = False


@dataclass
class _Operation:
    run: OperationRun
    entered_at: str | None = None
    attempts: list[_Attempt] = field(default_factory=list)


class _Folder:
    """One pass over the events, in id order."""

    def __init__(
        self, session_id: str, pipeline: Pipeline | None, execution_arn: str | None
    ) -> None:
        self.session_id = session_id
        self.pipeline = pipeline
        self.error_scope = execution_arn or session_id
        self.index = state_index(pipeline) if pipeline else {}
        self.jobs: dict[str, JobRun] = {}
        self.operations: dict[tuple[str, str], _Operation] = {}
        self.last_operation: dict[str, str] = {}
        self.errors: list[ErrorRecord] = []
        self.state_of: dict[int, str | None] = {}
        self.failed_by_job = False
        self.end: str | None = None
        self.end_time = ""
        self.operation_types: dict[tuple[str, str], str] = {}
        self.task_arns: dict[tuple[str, str], str] = {}
        for job in pipeline.jobs if pipeline else []:
            self.jobs[job.job_id] = JobRun(session_id=session_id, job_id=job.job_id)
            for op in job.operations:
                ecs = op.config.operation_type is OperationType.ECS
                self.operation_types[job.job_id, op.operation_id] = "ecs" if ecs else "lambda"

    # -- lookups

    def ref(self, name: str | None) -> StateRef | None:
        if name is None:
            return None
        return self.index.get(name) or parse_state_name(name)

    def job(self, job_id: str) -> JobRun:
        return self.jobs.setdefault(job_id, JobRun(session_id=self.session_id, job_id=job_id))

    def operation(self, job_id: str, operation_id: str) -> _Operation:
        key = (job_id, operation_id)
        if key not in self.operations:
            run = OperationRun(session_id=self.session_id, job_id=job_id, operation_id=operation_id)
            self.operations[key] = _Operation(run)
        return self.operations[key]

    def operation_type(self, job_id: str, operation_id: str) -> str | None:
        return self.operation_types.get((job_id, operation_id))

    def operation_ids(self, job_id: str) -> list[str]:
        if self.pipeline is not None and any(j.job_id == job_id for j in self.pipeline.jobs):
            return [op.operation_id for op in self.pipeline.job(job_id).operations]
        return [op for (job, op) in self.operations if job == job_id]

    def error(
        self,
        event_id: int,
        timestamp: str,
        failure: TaskFailure,
        *,
        job_id: str | None = None,
        operation_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        digest = hashlib.sha256(f"{self.error_scope}#{event_id}".encode()).hexdigest()[:12]
        self.errors.append(
            ErrorRecord(
                error_id=f"err-{digest}",
                session_id=self.session_id,
                job_id=job_id,
                operation_id=operation_id,
                attempt=attempt,
                kind=failure.kind,
                message=failure.message,
                timestamp=timestamp,
                context=failure.context,
            )
        )

    # -- events

    @property
    def handlers(self) -> dict[str, Callable[[int, str, StateRef | None, dict[str, Any]], None]]:
        return {
            "TaskScheduled": self.task_scheduled,
            "TaskSubmitted": self.task_submitted,
            "TaskSucceeded": self.task_succeeded,
            "TaskFailed": self.task_failed,
            "TaskTimedOut": self.task_timed_out,
            "ExecutionSucceeded": self.execution_succeeded,
            "ExecutionFailed": self.execution_failed,
            "ExecutionAborted": self.execution_aborted,
            "ExecutionTimedOut": self.execution_timed_out,
        }

    def fold(self, events: Iterable[Mapping[str, Any]]) -> FoldedHistory:
        handlers = self.handlers
        for event in sorted(events, key=lambda e: int(e["id"])):
            details = _details(event)
            event_type = str(event["type"])
            event_id = int(event["id"])
            name = details.get("name") if event_type.endswith(("Entered", "Exited")) else None
            if name is None:
                name = self.state_of.get(int(event.get("previousEventId") or 0))
            self.state_of[event_id] = name
            timestamp = event_time(event["timestamp"])
            handler = handlers.get(event_type)
            if handler is not None:
                handler(event_id, timestamp, self.ref(name), details)
            elif event_type.endswith("StateEntered"):
                self.entered(event_id, timestamp, self.ref(name), details)
        self.close()
        return FoldedHistory(
            list(self.jobs.values()),
            [op.run for op in self.operations.values()],
            self.errors,
        )

    def entered(
        self, event_id: int, timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        if ref is None:
            return
        job = self.job(ref.job_id)
        if ref.role is StateRole.SKIP:
            self.finish_job(job, RunStatus.SKIPPED, timestamp, "listed in the rerun's skip list")
        elif ref.role is StateRole.BLOCKED:
            self.finish_job(
                job, RunStatus.UPSTREAM_FAILED, timestamp, "a dependency did not complete"
            )
        elif ref.role is StateRole.OPERATION and ref.operation_id:
            job.status = RunStatus.RUNNING
            job.started_at = job.started_at or timestamp
            op = self.operation(ref.job_id, ref.operation_id)
            op.run.status = RunStatus.RUNNING
            op.entered_at = timestamp
            self.last_operation[ref.job_id] = ref.operation_id
        elif ref.role is StateRole.DONE:
            for op_id in self.operation_ids(ref.job_id):
                if (ref.job_id, op_id) in self.operations:
                    self.close_operation(ref.job_id, op_id, RunStatus.COMPLETED, timestamp)
            self.finish_job(job, RunStatus.COMPLETED, timestamp, None)
        elif ref.role is StateRole.FAILED:
            self.job_failed(event_id, timestamp, ref.job_id, details)
        elif ref.role in FAIL_ROLES:
            self.failed_by_job = True

    def finish_job(
        self, job: JobRun, status: RunStatus, timestamp: str, reason: str | None
    ) -> None:
        job.status = status
        job.finished_at = timestamp
        job.skipped_reason = reason
        if status in {RunStatus.FAILED, RunStatus.TIMEOUT}:
            job.error_summary = f"{job.job_id}: {status}"

    def close_operation(
        self, job_id: str, operation_id: str, status: RunStatus, timestamp: str
    ) -> _Operation:
        """End the operation's open attempt (making one when the state was no Task)."""
        op = self.operation(job_id, operation_id)
        if not op.attempts:
            started = op.entered_at or timestamp
            op.attempts.append(
                _Attempt(OperationAttempt(attempt=1, status=RunStatus.RUNNING, started_at=started))
            )
        last = op.attempts[-1]
        if last.record.status is RunStatus.RUNNING:
            self.end_attempt(last, status, timestamp)
        op.run.status = last.record.status
        op.run.attempts = [a.record for a in op.attempts]
        return op

    def end_attempt(self, attempt: _Attempt, status: RunStatus, timestamp: str) -> None:
        record = attempt.record
        record.status = status
        record.finished_at = timestamp
        record.elapsed_seconds = round(seconds_between(record.started_at, timestamp), 3)

    def job_failed(
        self, event_id: int, timestamp: str, job_id: str, details: dict[str, Any]
    ) -> None:
        """The Catch put the error at `$.jobs.KEY`: close the failing operation, skip the rest."""
        state = _json(details.get("input")) or {}
        caught = (state.get("jobs") or {}).get(input_key(job_id)) or {}
        error = str(caught.get("Error") or "States.TaskFailed")
        cause = str(caught.get("Cause") or "")
        operation_id = self.last_operation.get(job_id)
        status = RunStatus.FAILED
        if operation_id is not None:
            op = self.operation(job_id, operation_id)
            last = op.attempts[-1] if op.attempts else None
            if last is not None and last.record.status is not RunStatus.RUNNING:
                status = last.record.status
            elif error == TIMEOUT_ERROR:
                status = RunStatus.TIMEOUT
            op = self.close_operation(job_id, operation_id, status, timestamp)
            final = op.attempts[-1]
            if not final.error_recorded:
                failure = task_failure(
                    error,
                    cause,
                    resource_type=final.resource_type or self.operation_type(job_id, operation_id),
                    parameters=final.parameters,
                    where=f"{job_id}/{operation_id}",
                )
                self.error(
                    event_id,
                    timestamp,
                    failure,
                    job_id=job_id,
                    operation_id=operation_id,
                    attempt=final.record.attempt,
                )
                final.error_recorded = True
                if failure.context.get("task_arn"):
                    self.task_arns[job_id, operation_id] = failure.context["task_arn"]
            ids = self.operation_ids(job_id)
            for later in ids[ids.index(operation_id) + 1 :] if operation_id in ids else []:
                self.operation(job_id, later).run.status = RunStatus.SKIPPED
        self.finish_job(self.job(job_id), status, timestamp, None)

    def current(self, ref: StateRef | None) -> tuple[str, str, _Operation] | None:
        if ref is None or ref.role is not StateRole.OPERATION or ref.operation_id is None:
            return None
        return ref.job_id, ref.operation_id, self.operation(ref.job_id, ref.operation_id)

    def task_scheduled(
        self, _event_id: int, timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        found = self.current(ref)
        if found is None:
            return
        _, _, op = found
        parameters = _json(details.get("parameters")) or {}
        resource_type = details.get("resourceType")
        memory = _scheduled_context(resource_type, parameters).get("container_limit_mb")
        op.attempts.append(
            _Attempt(
                OperationAttempt(
                    attempt=len(op.attempts) + 1,
                    status=RunStatus.RUNNING,
                    started_at=timestamp,
                    memory_limit_mb=memory,
                    timeout_seconds=_int_or_none(details.get("timeoutInSeconds")),
                ),
                resource_type=resource_type,
                parameters=parameters if isinstance(parameters, dict) else {},
            )
        )
        op.run.status = RunStatus.RUNNING
        op.run.attempts = [a.record for a in op.attempts]

    def task_submitted(
        self, _event_id: int, _timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        """`runTask.sync` submitted the task: remember its ARN (its logs are named after it)."""
        found = self.current(ref)
        output = _json(details.get("output"))
        tasks = _field(output, "Tasks") if isinstance(output, dict) else None
        if found is not None and tasks and isinstance(tasks[0], dict):
            self.remember_task(found[0], found[1], tasks[0])

    def remember_task(self, job_id: str, operation_id: str, task: Mapping[str, Any]) -> None:
        arn = _field(task, "TaskArn")
        if isinstance(arn, str):
            self.task_arns[job_id, operation_id] = arn

    def task_succeeded(
        self, _event_id: int, timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        found = self.current(ref)
        if found is None or not found[2].attempts:
            return
        op = found[2]
        output = _json(details.get("output"))
        if isinstance(output, dict) and _field(output, "Containers"):
            self.remember_task(found[0], found[1], output)
            container = _failing_container(list(_field(output, "Containers")))
            op.attempts[-1].record.exit_code = _int_or_none(_field(container, "ExitCode"))
        self.end_attempt(op.attempts[-1], RunStatus.COMPLETED, timestamp)
        op.run.status = RunStatus.COMPLETED

    def task_ended_badly(
        self,
        event_id: int,
        timestamp: str,
        ref: StateRef | None,
        details: dict[str, Any],
        *,
        timed_out: bool,
    ) -> None:
        found = self.current(ref)
        if found is None:
            return
        job_id, operation_id, op = found
        if not op.attempts:
            op.attempts.append(
                _Attempt(
                    OperationAttempt(attempt=1, status=RunStatus.RUNNING, started_at=timestamp),
                    resource_type=details.get("resourceType"),
                )
            )
        attempt = op.attempts[-1]
        error = str(details.get("error") or (TIMEOUT_ERROR if timed_out else "States.TaskFailed"))
        cause = str(details.get("cause") or "")
        timeout = attempt.record.timeout_seconds
        if timed_out:
            failure = TaskFailure(
                FailureKind.TIMEOUT,
                f"{job_id}/{operation_id} ran past its timeout of {timeout} seconds and "
                f"Step Functions stopped waiting ({error})" + (f": {cause}" if cause else ""),
                _compact(
                    {
                        "aws_error": error,
                        "timeout_seconds": timeout,
                        **_scheduled_context(attempt.resource_type, attempt.parameters),
                    }
                ),
            )
        else:
            failure = task_failure(
                error,
                cause,
                resource_type=attempt.resource_type,
                parameters=attempt.parameters,
                where=f"{job_id}/{operation_id}",
            )
            failure = TaskFailure(
                failure.kind,
                failure.message,
                {
                    **_scheduled_context(attempt.resource_type, attempt.parameters),
                    **failure.context,
                },
            )
        status = RunStatus.TIMEOUT if failure.kind is FailureKind.TIMEOUT else RunStatus.FAILED
        if failure.context.get("task_arn"):
            self.task_arns[job_id, operation_id] = failure.context["task_arn"]
        if failure.context.get("exit_code") is not None:
            attempt.record.exit_code = failure.context["exit_code"]
        self.end_attempt(attempt, status, timestamp)
        op.run.status = status
        op.run.attempts = [a.record for a in op.attempts]
        self.error(
            event_id,
            timestamp,
            failure,
            job_id=job_id,
            operation_id=operation_id,
            attempt=attempt.record.attempt,
        )
        attempt.error_recorded = True

    def task_failed(
        self, event_id: int, timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        self.task_ended_badly(event_id, timestamp, ref, details, timed_out=False)

    def task_timed_out(
        self, event_id: int, timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        self.task_ended_badly(event_id, timestamp, ref, details, timed_out=True)

    def execution_succeeded(
        self, _event_id: int, timestamp: str, _ref: StateRef | None, _details: dict[str, Any]
    ) -> None:
        self.end, self.end_time = "SUCCEEDED", timestamp

    def execution_failed(
        self, event_id: int, timestamp: str, ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        """A job's own failure was recorded already; anything else (States.Runtime in the
        state machine itself) becomes an error of its own."""
        self.end, self.end_time = "FAILED", timestamp
        if self.failed_by_job:
            return
        error = str(details.get("error") or "States.Runtime")
        cause = str(details.get("cause") or "")
        found = self.current(ref)
        if found is not None:
            job_id, operation_id, _ = found
            failure = task_failure(
                error,
                cause,
                resource_type=self.operation_type(job_id, operation_id),
                where=f"{job_id}/{operation_id}",
            )
            self.error(event_id, timestamp, failure, job_id=job_id, operation_id=operation_id)
            op = self.close_operation(job_id, operation_id, RunStatus.FAILED, timestamp)
            op.attempts[-1].error_recorded = True
            self.finish_job(self.job(job_id), RunStatus.FAILED, timestamp, None)
            return
        message = f"Execution failed ({error})" + (f": {cause}" if cause else "")
        self.error(
            event_id,
            timestamp,
            TaskFailure(FailureKind.EXIT_NONZERO, message, {"aws_error": error}),
        )

    def execution_aborted(
        self, _event_id: int, timestamp: str, _ref: StateRef | None, _details: dict[str, Any]
    ) -> None:
        self.end, self.end_time = "ABORTED", timestamp

    def execution_timed_out(
        self, event_id: int, timestamp: str, _ref: StateRef | None, details: dict[str, Any]
    ) -> None:
        self.end, self.end_time = "TIMED_OUT", timestamp
        self.error(
            event_id,
            timestamp,
            TaskFailure(
                FailureKind.SESSION_TIMEOUT,
                "Session exceeded the pipeline's timeout_seconds and was stopped",
                {"aws_error": str(details.get("error") or TIMEOUT_ERROR)},
            ),
        )

    def close(self) -> None:
        """After an execution stopped early, nothing is left running or pending."""
        if self.end not in {"FAILED", "ABORTED", "TIMED_OUT"}:
            return
        for (job_id, operation_id), op in self.operations.items():
            if op.run.status is RunStatus.RUNNING:
                self.close_operation(job_id, operation_id, RunStatus.CANCELLED, self.end_time)
        for job in self.jobs.values():
            if job.status is RunStatus.RUNNING:
                self.finish_job(
                    job,
                    RunStatus.CANCELLED,
                    self.end_time,
                    "the execution stopped before the job finished",
                )
            elif job.status is RunStatus.PENDING:
                self.finish_job(
                    job, RunStatus.CANCELLED, self.end_time, "session stopped before the job ran"
                )


def fold_history(
    events: Iterable[Mapping[str, Any]],
    *,
    session_id: str,
    pipeline: Pipeline | None = None,
    execution_arn: str | None = None,
) -> FoldedHistory:
    """Job runs, operation runs (every attempt) and error records of one execution.

    With the pipeline, jobs the execution never reached are listed as pending (cancelled
    when it stopped) and shortened state names resolve; without it, names are parsed.
    Error ids derive from the execution and the event, so folding twice gives the same ids.
    """
    return _Folder(session_id, pipeline, execution_arn).fold(events)


def ecs_task_arns(
    events: Iterable[Mapping[str, Any]], *, pipeline: Pipeline | None = None
) -> dict[tuple[str, str], str]:
    """The last ECS task ARN of each (job, operation), for finding its log stream."""
    folder = _Folder("", pipeline, None)
    folder.fold(events)
    return folder.task_arns
