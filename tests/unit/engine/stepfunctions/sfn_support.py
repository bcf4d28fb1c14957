"""Shared by the Step Functions tests: the pipelines the history fixtures belong to, builders
for inline pipelines, and what stands in for ECS tasks on moto (which cannot run them)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bunsui_core.model.pipeline import Job, Operation, OperationType, Pipeline
from bunsui_core.model.pipeline_loader import validate_pipeline_data

ACCOUNT = "111122223333"
REGION = "eu-west-1"
FIXTURES = Path(__file__).with_name("fixtures")
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
ROLE_ARN = "arn:aws:iam::123456789012:role/bunsui-states"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


def history_fixture(name: str) -> list[dict[str, Any]]:
    """The events of a recorded-shape history (`aws stepfunctions get-execution-history`)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())["events"]


def function_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def task_definition_arn(family: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:ecs:{region}:{account}:task-definition/{family}"


def lambda_job(job_id: str, function: str, *, deps: list[str] | None = None, **config: Any) -> dict:
    """A one-operation Lambda job (`run`); extra keys go into the operation config."""
    return {
        "job_id": job_id,
        "operations": [
            {
                "operation_id": "run",
                "config": {
                    "operation_type": "lambda",
                    "resource_arn": function,
                    "parameters": config.pop("parameters", {}),
                    **config,
                },
            }
        ],
        "dependencies": deps or [],
    }


def ecs_job(
    job_id: str, task_definition: str, *, deps: list[str] | None = None, **config: Any
) -> dict:
    """A one-operation ECS job (`task`); extra keys go into the operation config."""
    return {
        "job_id": job_id,
        "operations": [
            {
                "operation_id": "task",
                "config": {
                    "operation_type": "ecs",
                    "resource_arn": task_definition,
                    "parameters": config.pop("parameters", {}),
                    **config,
                },
            }
        ],
        "dependencies": deps or [],
    }


def pipeline(name: str, *jobs: dict, **top: Any) -> Pipeline:
    return validate_pipeline_data({"name": name, "jobs": list(jobs), **top})


NIGHTLY_ETL = pipeline(
    "nightly-etl",
    lambda_job(
        "extract",
        function_arn("etl-extract"),
        timeout_seconds=300,
        parameters={"source": "s3://acme-raw/orders/"},
    ),
    ecs_job(
        "transform",
        task_definition_arn("etl-transform:7"),
        deps=["extract"],
        timeout_seconds=3600,
        parameters={"memory": 2048, "cpu": 1024, "batch_size": 50000},
    ),
    lambda_job("load", function_arn("etl-load"), deps=["transform"], timeout_seconds=300),
)
"""extract (Lambda) -> transform (ECS, 2 GiB) -> load (Lambda): ecs_oom.json."""

SCORING = pipeline(
    "scoring",
    lambda_job(
        "score", function_arn("etl-score"), timeout_seconds=900, parameters={"batch_size": 1000}
    ),
)
"""One Lambda job whose function times out after 300 s: lambda_timeout.json."""

REINDEX = pipeline(
    "reindex",
    ecs_job(
        "reindex",
        task_definition_arn("search-reindex:12"),
        timeout_seconds=600,
        retry={"max_attempts": 2, "interval_seconds": 30},
        parameters={"memory": 4096, "cpu": 2048},
    ),
)
"""One ECS job that runs past its 600 s TimeoutSeconds twice: task_timed_out.json."""

FANOUT = pipeline(
    "fanout",
    lambda_job("prepare", function_arn("fanout-prepare"), timeout_seconds=120),
    ecs_job(
        "left",
        task_definition_arn("fanout-left:2"),
        deps=["prepare"],
        timeout_seconds=1800,
        parameters={"memory": 1024, "cpu": 512},
    ),
    lambda_job("right", function_arn("fanout-right"), deps=["prepare"], timeout_seconds=120),
    lambda_job("report", function_arn("fanout-report"), deps=["left", "right"]),
)
"""prepare -> (left ECS | right Lambda) -> report: execution_aborted.json (stopped while
left ran) and success.json (a rerun skipping prepare)."""


# ---- moto stand-ins for ECS ------------------------------------------------------------------


def stopped_task(job_id: str, *, exit_code: int = 137, reason: str = OOM_REASON) -> dict[str, Any]:
    """An ECS task description as runTask.sync puts it in a failure's cause."""
    return {
        "TaskArn": f"arn:aws:ecs:us-east-1:123456789012:task/bunsui/{job_id}0f1e2d3c4b5a",
        "TaskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/etl-transform:7",
        "ClusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/bunsui",
        "LastStatus": "STOPPED",
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Memory": "2048",
        "Cpu": "1024",
        "Containers": [{"Name": "main", "ExitCode": exit_code, "Reason": reason}],
    }


def ecs_tasks_fail(job: Job, operation: Operation, state: dict[str, Any]) -> dict[str, Any]:
    """ECS operations fail like an out-of-memory runTask.sync, through the real Catch.

    moto cannot run ECS tasks, and its Fail states refuse `States.*` error names, so the
    stand-in is a Parallel whose branch fails with the stopped task as the cause.
    """
    if operation.config.operation_type is not OperationType.ECS:
        return state
    stand_in: dict[str, Any] = {
        "Type": "Parallel",
        "Branches": [
            {
                "StartAt": f"oom {job.job_id}",
                "States": {
                    f"oom {job.job_id}": {
                        "Type": "Fail",
                        "Error": "OutOfMemoryError",
                        "Cause": json.dumps(stopped_task(job.job_id)),
                    }
                },
            }
        ],
        "Catch": state["Catch"],
        "Next": state["Next"],
    }
    return stand_in


def ecs_tasks_succeed(_job: Job, operation: Operation, state: dict[str, Any]) -> dict[str, Any]:
    """ECS operations succeed at once (a Pass state in their place)."""
    if operation.config.operation_type is not OperationType.ECS:
        return state
    return {"Type": "Pass", "ResultPath": None, "Next": state["Next"]}


def tasks_wait(seconds: int) -> Any:
    """Every operation waits for a task token that never comes, so it times out (or is
    stopped) for real: `TaskTimedOut` events from moto's interpreter."""

    def override(_job: Job, _operation: Operation, state: dict[str, Any]) -> dict[str, Any]:
        waiting = {
            **state,
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "waiter", "Payload": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": seconds,
        }
        waiting.pop("TimeoutSecondsPath", None)
        return waiting

    return override


def tasks_sleep(seconds: int) -> Any:
    """Every operation is a Wait state: a long-running execution moto can stop."""

    def override(_job: Job, _operation: Operation, state: dict[str, Any]) -> dict[str, Any]:
        return {"Type": "Wait", "Seconds": seconds, "Next": state["Next"]}

    return override


def wait_for(sfn: Any, arn: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """describe_execution once the execution is no longer running."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def wait_for_event(sfn: Any, arn: str, event_type: str, *, timeout: float = 30.0) -> None:
    """Until the history has an event of this type (moto cannot stop an execution whose
    interpreter has not started yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any(e["type"] == event_type for e in events):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {event_type} in the history of {arn}")


def run_definition(
    sfn: Any, definition: dict[str, Any], execution_input: dict[str, Any], *, name: str = "m"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create a state machine, run it to its end; returns describe_execution and the history."""
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    arn = sfn.start_execution(
        stateMachineArn=machine,
        name=execution_input["session_id"],
        input=json.dumps(execution_input),
    )["executionArn"]
    described = wait_for(sfn, arn)
    return described, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
