"""Compiled state machines executed by moto's ASL interpreter, and their histories folded.

moto runs Lambda invocations (always successfully) and real Parallel/Choice/Retry/Catch/
timeouts; it cannot run ECS tasks, so ECS operations are stood in for (see sfn_support).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto.ecs.models import ecs_backends

from bunsui_core.diagnosis.classifier import classify
from bunsui_core.engine.stepfunctions.asl import compile_pipeline, execution_input
from bunsui_core.engine.stepfunctions.history import fold_history, task_failure
from bunsui_core.model.session import FailureKind, JobOverride, RunStatus, Session
from tests.unit.engine.stepfunctions.sfn_support import (
    OOM_REASON,
    ecs_job,
    ecs_tasks_fail,
    function_arn,
    lambda_job,
    pipeline,
    run_definition,
    task_definition_arn,
    tasks_wait,
)

FN = function_arn("worker", region="us-east-1", account="123456789012")
TD = task_definition_arn("etl-transform:7", region="us-east-1", account="123456789012")

ALL_LAMBDA_FANOUT = pipeline(
    "fan",
    lambda_job("prepare", FN, timeout_seconds=60),
    lambda_job("left", FN, deps=["prepare"], parameters={"batch_size": 10}),
    lambda_job("right", FN, deps=["prepare"]),
    lambda_job("report", FN, deps=["left", "right"]),
)

ETL_WITH_SIDE_BRANCH = pipeline(
    "etl",
    lambda_job("extract", FN),
    ecs_job("transform", TD, deps=["extract"], parameters={"memory": 2048, "cpu": 1024}),
    lambda_job("audit", FN, deps=["extract"]),
    lambda_job("load", FN, deps=["transform"]),
    lambda_job("publish", FN, deps=["load", "audit"]),
)
"""transform fails; load and publish depend on it, audit does not."""


def session(**fields: Any) -> Session:
    return Session(session_id="ses-0a1b2c3d4e5f", pipeline_id="p", pipeline_version=1, **fields)


def scheduled(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """TaskScheduled parameters by the state that scheduled them (last attempt wins)."""
    by_id = {e["id"]: e for e in events}
    found = {}
    for event in events:
        if event["type"] == "TaskScheduled":
            entered = by_id[event["previousEventId"]]
            while "stateEnteredEventDetails" not in entered:
                entered = by_id[entered["previousEventId"]]
            details = event["taskScheduledEventDetails"]
            found[entered["stateEnteredEventDetails"]["name"]] = {
                **details,
                "parameters": json.loads(details["parameters"]),
            }
    return found


def statuses(folded: Any) -> dict[str, RunStatus]:
    return {r.job_id: r.status for r in folded.job_runs}


class TestParallelism:
    def test_independent_jobs_both_run_inside_one_parallel(self, sfn):
        """left and right are scheduled before the Parallel state ends; all complete."""
        definition = compile_pipeline(ALL_LAMBDA_FANOUT)
        described, events = run_definition(
            sfn, definition, execution_input(session(), ALL_LAMBDA_FANOUT)
        )
        assert described["status"] == "SUCCEEDED"
        tasks = scheduled(events)
        assert set(tasks) == {"op:prepare:run", "op:left:run", "op:right:run", "op:report:run"}
        order = [e["type"] for e in events]
        started = order.index("ParallelStateStarted")
        ended = order.index("ParallelStateSucceeded")
        branch_tasks = [e for e in events[started:ended] if e["type"] == "TaskScheduled"]
        assert len(branch_tasks) == 2
        folded = fold_history(events, session_id="ses-0a1b2c3d4e5f", pipeline=ALL_LAMBDA_FANOUT)
        assert set(statuses(folded).values()) == {RunStatus.COMPLETED}
        assert all(len(r.attempts) == 1 for r in folded.operation_runs)
        assert json.loads(described["output"])["jobs"] == {
            j: {"status": "completed"} for j in ("prepare", "left", "right", "report")
        }


class TestFailure:
    def test_a_failed_job_blocks_its_dependents_and_fails_the_execution(self, sfn):
        """transform's OOM: load and publish never run, audit does; the execution fails
        with transform's own error and cause."""
        definition = compile_pipeline(ETL_WITH_SIDE_BRANCH, task_state_override=ecs_tasks_fail)
        described, events = run_definition(
            sfn, definition, execution_input(session(), ETL_WITH_SIDE_BRANCH)
        )
        assert described["status"] == "FAILED"
        assert described["error"] == "OutOfMemoryError"
        cause = json.loads(described["cause"])
        assert cause["Containers"][0]["Reason"] == OOM_REASON
        assert set(scheduled(events)) == {"op:extract:run", "op:audit:run"}
        folded = fold_history(events, session_id="ses-0a1b2c3d4e5f", pipeline=ETL_WITH_SIDE_BRANCH)
        assert statuses(folded) == {
            "extract": RunStatus.COMPLETED,
            "transform": RunStatus.FAILED,
            "audit": RunStatus.COMPLETED,
            "load": RunStatus.UPSTREAM_FAILED,
            "publish": RunStatus.UPSTREAM_FAILED,
        }
        (error,) = folded.errors
        assert (error.job_id, error.operation_id, error.attempt) == ("transform", "task", 1)
        assert error.context["exit_code"] == 137
        assert error.context["container_limit_mb"] == 2048
        result = classify(error.message, kind=error.kind, run_context=error.context)
        assert result.error_code == "ECS_OUT_OF_MEMORY"

    def test_a_timed_out_operation_is_retried_when_configured_then_caught(self, sfn):
        """TimeoutSeconds really expires (twice: one retry); the attempts are TIMEOUT."""
        p = pipeline(
            "slow",
            lambda_job("slow", FN, retry={"max_attempts": 2, "interval_seconds": 1}),
            lambda_job("after", FN, deps=["slow"]),
        )
        definition = compile_pipeline(p, task_state_override=tasks_wait(1))
        described, events = run_definition(sfn, definition, execution_input(session(), p))
        assert described["status"] == "FAILED"
        assert described["error"] == "bunsui.States.Timeout"
        assert [e["type"] for e in events].count("TaskTimedOut") == 2
        folded = fold_history(events, session_id="ses-0a1b2c3d4e5f", pipeline=p)
        assert statuses(folded) == {"slow": RunStatus.TIMEOUT, "after": RunStatus.UPSTREAM_FAILED}
        (op,) = [r for r in folded.operation_runs if r.job_id == "slow"]
        assert [a.status for a in op.attempts] == [RunStatus.TIMEOUT, RunStatus.TIMEOUT]
        assert [a.timeout_seconds for a in op.attempts] == [1, 1]
        assert [(e.kind, e.attempt) for e in folded.errors] == [
            (FailureKind.TIMEOUT, 1),
            (FailureKind.TIMEOUT, 2),
        ]


class TestExecutionInput:
    def test_a_skip_list_skips_jobs(self, sfn):
        """A rerun's input skips prepare and left: they never run; right and report do."""
        rerun = session(skipped_jobs=["prepare", "left"])
        definition = compile_pipeline(ALL_LAMBDA_FANOUT)
        described, events = run_definition(
            sfn, definition, execution_input(rerun, ALL_LAMBDA_FANOUT)
        )
        assert described["status"] == "SUCCEEDED"
        assert set(scheduled(events)) == {"op:right:run", "op:report:run"}
        folded = fold_history(events, session_id=rerun.session_id, pipeline=ALL_LAMBDA_FANOUT)
        assert statuses(folded) == {
            "prepare": RunStatus.SKIPPED,
            "left": RunStatus.SKIPPED,
            "right": RunStatus.COMPLETED,
            "report": RunStatus.COMPLETED,
        }

    def test_per_job_config_reaches_the_lambda_payload(self, sfn):
        """An override's batch_size and timeout are what the invocation gets."""
        changed = session(
            config_overrides={"left": JobOverride(timeout_seconds=45, parameters={"batch_size": 3})}
        )
        definition = compile_pipeline(ALL_LAMBDA_FANOUT)
        _, events = run_definition(sfn, definition, execution_input(changed, ALL_LAMBDA_FANOUT))
        left = scheduled(events)["op:left:run"]
        assert left["timeoutInSeconds"] == 45
        payload = left["parameters"]["Payload"]
        assert payload["parameters"] == {"batch_size": 3}
        assert payload["bunsui"] == {
            "session_id": changed.session_id,
            "pipeline_id": "p",
            "job_id": "left",
            "operation_id": "run",
            "retry_count": 0,
        }
        assert scheduled(events)["op:right:run"]["parameters"]["Payload"]["parameters"] == {}

    def test_per_job_memory_reaches_the_ecs_run_task_overrides(self, sfn):
        """The real runTask.sync state: moto records the parameters it was scheduled with
        (then fails the task, which it cannot run) - memory and cpu from the override."""
        p = pipeline("ecs", ecs_job("transform", TD, parameters={"memory": 2048, "cpu": 1024}))
        changed = session(
            config_overrides={"transform": JobOverride(memory_mb=4096, parameters={"cpu": 2048})}
        )
        definition = compile_pipeline(p, cluster="bunsui", subnets=["subnet-1"])
        _, events = run_definition(sfn, definition, execution_input(changed, p))
        task = scheduled(events)["op:transform:task"]
        assert task["resourceType"] == "ecs"
        assert task["resource"] == "runTask.sync"
        overrides = task["parameters"]["Overrides"]
        assert (overrides["Memory"], overrides["Cpu"]) == ("4096", "2048")
        (container,) = overrides["ContainerOverrides"]
        assert container["Memory"] == 4096
        assert {"Name": "BUNSUI_JOB_ID", "Value": "transform"} in container["Environment"]
        assert task["parameters"]["TaskDefinition"] == TD
        folded = fold_history(events, session_id=changed.session_id, pipeline=p)
        (op,) = folded.operation_runs
        assert op.attempts[0].memory_limit_mb == 4096


class TestEcsErrorsFromMoto:
    def test_a_task_stopped_for_memory_maps_to_the_ecs_memory_error(self, aws):
        """describe_tasks of a task stopped with an OOM reason (exit code 137) reads as
        ECS_OUT_OF_MEMORY with its task definition, cluster and exit code."""
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="bunsui")
        ecs.register_task_definition(
            family="etl-transform",
            containerDefinitions=[{"name": "main", "image": "etl:1", "memory": 2048}],
            # awsvpc would need moto's EC2 network interfaces, which it cannot describe here.
            networkMode="bridge",
            cpu="1024",
            memory="2048",
        )
        arn = ecs.run_task(cluster="bunsui", taskDefinition="etl-transform", launchType="FARGATE")[
            "tasks"
        ][0]["taskArn"]
        ecs.stop_task(cluster="bunsui", task=arn, reason=OOM_REASON)
        backend = ecs_backends["123456789012"]["us-east-1"]
        backend.tasks["bunsui"][arn].containers[0].exitCode = 137
        task = ecs.describe_tasks(cluster="bunsui", tasks=[arn])["tasks"][0]
        failure = task_failure(
            "States.TaskFailed", json.dumps(task, default=str), resource_type="ecs"
        )
        assert failure.context["task_definition"] == "etl-transform:1"
        assert failure.context["cluster"] == "bunsui"
        assert failure.context["stopped_reason"] == OOM_REASON
        assert failure.context["container_limit_mb"] == 2048
        result = classify(failure.message, kind=failure.kind, run_context=failure.context)
        assert result.error_code == "ECS_OUT_OF_MEMORY"
