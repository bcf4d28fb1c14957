"""Folding AWS-shaped execution histories (recorded-shape fixtures) into runs and errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from bunsui_core.diagnosis.classifier import classify
from bunsui_core.engine.stepfunctions.history import (
    ecs_task_arns,
    event_time,
    fold_history,
    task_failure,
)
from bunsui_core.model.session import ErrorRecord, FailureKind, RunStatus
from tests.unit.engine.stepfunctions.sfn_support import (
    FANOUT,
    NIGHTLY_ETL,
    OOM_REASON,
    REINDEX,
    SCORING,
    history_fixture,
)


def fold(name: str, pipeline: Any = None, **options: Any) -> Any:
    return fold_history(history_fixture(name), session_id="ses-1", pipeline=pipeline, **options)


def statuses(folded: Any) -> dict[str, RunStatus]:
    return {r.job_id: r.status for r in folded.job_runs}


def classified(error: ErrorRecord) -> str:
    return classify(error.message, kind=error.kind, run_context=error.context).error_code


class TestEcsOutOfMemory:
    def test_runs_show_where_it_failed_and_what_never_ran(self):
        """extract completed, transform failed on its first attempt, load was blocked."""
        folded = fold("ecs_oom", NIGHTLY_ETL)
        assert statuses(folded) == {
            "extract": RunStatus.COMPLETED,
            "transform": RunStatus.FAILED,
            "load": RunStatus.UPSTREAM_FAILED,
        }
        runs = {r.job_id: r for r in folded.job_runs}
        assert runs["load"].skipped_reason == "a dependency did not complete"
        assert runs["transform"].started_at == "2024-05-14T09:12:04.171000Z"
        assert runs["transform"].error_summary == "transform: failed"
        ops = {(r.job_id, r.operation_id): r for r in folded.operation_runs}
        assert ("load", "run") not in ops
        (attempt,) = ops["transform", "task"].attempts
        assert attempt.status is RunStatus.FAILED
        assert attempt.exit_code == 137
        assert attempt.memory_limit_mb == 2048
        assert attempt.timeout_seconds == 3600
        assert attempt.elapsed_seconds == 470.662

    def test_the_error_keeps_the_stopped_task_and_classifies_as_ecs_memory(self):
        """Stopped reason, container reason, exit code, task definition, cluster, memory."""
        (error,) = fold("ecs_oom", NIGHTLY_ETL).errors
        assert (error.job_id, error.operation_id, error.attempt) == ("transform", "task", 1)
        assert error.kind is FailureKind.KILLED_BY_SIGNAL
        assert error.message.splitlines()[0] == (
            "ECS task stopped (States.TaskFailed): Essential container in task exited"
        )
        assert (
            error.message.splitlines()[-1] == f"container main exited with code 137: {OOM_REASON}"
        )
        context = error.context
        assert context["aws_error"] == "States.TaskFailed"
        assert context["exit_code"] == 137
        assert context["signal_name"] == "SIGKILL"
        assert context["container_reason"] == OOM_REASON
        assert context["stop_code"] == "EssentialContainerExited"
        assert context["task_definition"] == "etl-transform:7"
        assert context["cluster"] == "bunsui"
        assert context["container_limit_mb"] == 2048
        assert context["cpu"] == 1024
        assert "memory_limit_mb" not in context
        result = classify(error.message, kind=error.kind, run_context=error.context)
        assert result.error_code == "ECS_OUT_OF_MEMORY"
        assert result.priors[0].action.value == "increase_memory"

    def test_the_task_arn_is_known_for_its_logs(self):
        """The task's ARN (its log stream is named after it) comes from the history."""
        arns = ecs_task_arns(history_fixture("ecs_oom"), pipeline=NIGHTLY_ETL)
        assert arns == {
            ("transform", "task"): "arn:aws:ecs:eu-west-1:111122223333:task/bunsui/"
            "0f1e2d3c4b5a49688776a5b4c3d2e1f0"
        }


class TestLambdaTimeout:
    def test_the_functions_timeout_classifies_as_lambda_timeout(self):
        """Lambda.Unknown with the returned payload: the function's own message is kept."""
        folded = fold("lambda_timeout", SCORING)
        assert statuses(folded) == {"score": RunStatus.FAILED}
        (error,) = folded.errors
        assert error.kind is FailureKind.EXIT_NONZERO
        lines = error.message.splitlines()
        assert lines[0] == "Lambda function etl-score failed (Lambda.Unknown)"
        assert lines[-1].endswith("Task timed out after 300.00 seconds")
        assert error.context["function"] == "etl-score"
        assert error.context["aws_error"] == "Lambda.Unknown"
        result = classify(error.message, kind=error.kind, run_context=error.context)
        assert result.error_code == "LAMBDA_TIMEOUT"
        assert result.context["timeout_seconds"] == 300.0

    def test_sandbox_timedout_and_handled_errors(self):
        """Newer runtimes report Sandbox.Timedout; handled errors keep type and trace."""
        sandbox = task_failure(
            "Sandbox.Timedout",
            json.dumps(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": "RequestId: 3b2f Error: Task timed out after 3.00 seconds",
                }
            ),
            resource_type="lambda",
            parameters={"FunctionName": "arn:aws:lambda:eu-west-1:1:function:f:live"},
        )
        assert sandbox.context["function"] == "f"
        assert classify(sandbox.message, kind=sandbox.kind).error_code == "LAMBDA_TIMEOUT"
        handled = task_failure(
            "KeyError",
            json.dumps(
                {
                    "errorMessage": "'customer_id'",
                    "errorType": "KeyError",
                    "requestId": "5f1e",
                    "stackTrace": ['  File "/var/task/app.py", line 12, in handler\n'],
                }
            ),
            resource_type="lambda",
            parameters={"FunctionName": "score"},
        )
        assert handled.message.splitlines()[-1] == "KeyError: 'customer_id'"
        assert handled.context["error_type"] == "KeyError"
        result = classify(handled.message, kind=handled.kind, run_context=handled.context)
        assert result.error_code == "DATA_MISSING_FIELD"

    def test_lambda_service_errors_classify_as_transient(self):
        """The cause format of a Lambda 500 is the service's, not the function's."""
        failure = task_failure(
            "Lambda.ServiceException",
            "Lambda is unable to process the request (Service: AWSLambda; Status Code: 500; "
            "Error Code: ServiceException; Request ID: 1a2b; Proxy: null)",
            resource_type="lambda",
            parameters={"FunctionName": "f"},
        )
        result = classify(failure.message, kind=failure.kind, run_context=failure.context)
        assert result.error_code == "LAMBDA_SERVICE_ERROR"
        assert result.transient


class TestTaskTimedOut:
    def test_each_timed_out_attempt_is_recorded(self):
        """Two attempts (one retry on States.Timeout), each TIMEOUT with its own error."""
        folded = fold("task_timed_out", REINDEX)
        assert statuses(folded) == {"reindex": RunStatus.TIMEOUT}
        (op,) = folded.operation_runs
        assert op.status is RunStatus.TIMEOUT
        assert [a.status for a in op.attempts] == [RunStatus.TIMEOUT, RunStatus.TIMEOUT]
        assert [a.timeout_seconds for a in op.attempts] == [600, 600]
        assert [e.attempt for e in folded.errors] == [1, 2]
        error = folded.errors[0]
        assert error.kind is FailureKind.TIMEOUT
        assert error.context["timeout_seconds"] == 600
        assert error.context["task_definition"] == "search-reindex:12"
        result = classify(error.message, kind=error.kind, run_context=error.context)
        # The catalog reads kind=timeout first (LOCAL_TIMEOUT); either way: more time.
        assert result.error_code in {"LOCAL_TIMEOUT", "STATES_TIMEOUT"}
        assert result.priors[0].action.value == "increase_timeout"

    def test_the_last_submitted_task_is_the_one_for_logs(self):
        """A retried operation's logs are those of its last task."""
        arns = ecs_task_arns(history_fixture("task_timed_out"), pipeline=REINDEX)
        assert arns["reindex", "task"].endswith("/b9a8f7e6d5c44b3a8291f0e9d8c7b6a5")


class TestAbortedAndSucceeded:
    def test_an_aborted_execution_cancels_what_had_not_finished(self):
        """right completed in the other branch; left was running; report never started."""
        folded = fold("execution_aborted", FANOUT)
        assert statuses(folded) == {
            "prepare": RunStatus.COMPLETED,
            "left": RunStatus.CANCELLED,
            "right": RunStatus.COMPLETED,
            "report": RunStatus.CANCELLED,
        }
        ops = {r.job_id: r for r in folded.operation_runs}
        assert ops["left"].status is RunStatus.CANCELLED
        aborted_at = event_time(history_fixture("execution_aborted")[-1]["timestamp"])
        assert ops["left"].attempts[0].finished_at == aborted_at
        assert folded.errors == []
        runs = {r.job_id: r for r in folded.job_runs}
        assert runs["report"].skipped_reason == "session stopped before the job ran"
        assert runs["report"].finished_at == runs["left"].finished_at == aborted_at

    def test_a_successful_rerun_skips_and_completes(self):
        """prepare skipped by the rerun's input, the parallel branches and report completed."""
        folded = fold("success", FANOUT)
        assert statuses(folded) == {
            "prepare": RunStatus.SKIPPED,
            "left": RunStatus.COMPLETED,
            "right": RunStatus.COMPLETED,
            "report": RunStatus.COMPLETED,
        }
        ops = {r.job_id: r for r in folded.operation_runs}
        assert "prepare" not in ops
        assert ops["left"].attempts[0].exit_code == 0
        assert ops["left"].attempts[0].memory_limit_mb == 1024
        assert folded.errors == []

    def test_interleaved_branches_are_told_apart(self):
        """Parallel branches' events interleave; previousEventId keeps each in its state."""
        runs = {r.job_id: r for r in fold("success", FANOUT).job_runs}
        assert runs["right"].finished_at < runs["left"].finished_at
        assert runs["left"].started_at < runs["right"].started_at


class TestFolding:
    def test_without_the_pipeline_state_names_are_enough(self):
        """Names carry job and operation; jobs never reached are simply not listed."""
        folded = fold("ecs_oom")
        assert statuses(folded) == {
            "extract": RunStatus.COMPLETED,
            "transform": RunStatus.FAILED,
            "load": RunStatus.UPSTREAM_FAILED,
        }
        assert classified(folded.errors[0]) == "ECS_OUT_OF_MEMORY"

    def test_folding_twice_gives_the_same_error_ids(self):
        """Ids derive from the execution and the event, so a re-sync adds nothing new."""
        arn = "arn:aws:states:eu-west-1:111122223333:execution:bunsui-nightly-etl-v3:ses-1"
        first = fold("ecs_oom", NIGHTLY_ETL, execution_arn=arn)
        second = fold("ecs_oom", NIGHTLY_ETL, execution_arn=arn)
        assert [e.error_id for e in first.errors] == [e.error_id for e in second.errors]
        assert first.errors[0].error_id.startswith("err-")
        other = fold("ecs_oom", NIGHTLY_ETL, execution_arn=arn + "x")
        assert other.errors[0].error_id != first.errors[0].error_id

    def test_boto3_datetimes_and_epoch_numbers_read_the_same(self):
        """boto3 gives datetimes, the raw API epoch seconds, the CLI ISO text."""
        events = history_fixture("ecs_oom")
        as_datetimes = copy.deepcopy(events)
        as_epoch = copy.deepcopy(events)
        for dt_event, epoch_event in zip(as_datetimes, as_epoch, strict=True):
            moment = datetime.fromisoformat(dt_event["timestamp"])
            dt_event["timestamp"] = moment
            epoch_event["timestamp"] = moment.timestamp()
        expected = fold_history(events, session_id="s", pipeline=NIGHTLY_ETL)
        assert fold_history(as_datetimes, session_id="s", pipeline=NIGHTLY_ETL) == expected
        assert fold_history(as_epoch, session_id="s", pipeline=NIGHTLY_ETL) == expected
        assert event_time(datetime(2024, 5, 14, 9, 12, 3, tzinfo=UTC)) == (
            "2024-05-14T09:12:03.000000Z"
        )

    def test_a_failure_of_the_machine_itself_is_an_error_of_its_own(self):
        """States.Runtime outside any job's Catch: recorded with no job, nothing left running."""
        events = history_fixture("execution_aborted")
        last = events[-1]
        events[-1] = {
            "timestamp": last["timestamp"],
            "type": "ExecutionFailed",
            "id": last["id"],
            "previousEventId": 0,
            "executionFailedEventDetails": {
                "error": "States.Runtime",
                "cause": "An error occurred while executing the state 'parallel:1'. The "
                "JSONPath '$[0].jobs.prepare' specified for the field 'prepare.$' could not "
                "be found in the input '[]'",
            },
        }
        folded = fold_history(events, session_id="s", pipeline=FANOUT)
        (error,) = folded.errors
        assert error.job_id is None
        assert error.message.startswith("Execution failed (States.Runtime)")
        assert classified(error) == "STATES_RUNTIME"
        assert statuses(folded)["left"] is RunStatus.CANCELLED

    def test_a_timed_out_execution_is_a_session_timeout(self):
        """ExecutionTimedOut: the pipeline's timeout, as the local engine reports it."""
        events = history_fixture("execution_aborted")
        last = events[-1]
        events[-1] = {
            "timestamp": last["timestamp"],
            "type": "ExecutionTimedOut",
            "id": last["id"],
            "previousEventId": last["previousEventId"],
            "executionTimedOutEventDetails": {"error": "States.Timeout"},
        }
        folded = fold_history(events, session_id="s", pipeline=FANOUT)
        (error,) = folded.errors
        assert error.kind is FailureKind.SESSION_TIMEOUT
        assert classified(error) == "SESSION_TIMEOUT"
        assert statuses(folded)["report"] is RunStatus.CANCELLED

    def test_a_still_running_execution_leaves_later_jobs_pending(self):
        """Cut the history mid-way: the running job is running, the rest pending."""
        events = history_fixture("ecs_oom")[:18]
        folded = fold_history(events, session_id="s", pipeline=NIGHTLY_ETL)
        assert statuses(folded) == {
            "extract": RunStatus.COMPLETED,
            "transform": RunStatus.RUNNING,
            "load": RunStatus.PENDING,
        }
        ops = {r.job_id: r for r in folded.operation_runs}
        assert ops["transform"].attempts[0].status is RunStatus.RUNNING
        assert folded.errors == []
