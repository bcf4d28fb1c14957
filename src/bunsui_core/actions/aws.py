"""AWS backend setup: create the tables (`aws init`) and check what is missing (`aws doctor`).

boto3 loads only here and in the AWS modules, so the local CLI never pays for it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError

REQUIRED_IAM_ACTIONS: dict[str, list[str]] = {
    "store (DynamoDB)": [
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
        "dynamodb:ListTables",
    ],
    "aws init (once)": ["dynamodb:CreateTable", "dynamodb:UpdateTable"],
    "engine (Step Functions)": [
        "states:CreateStateMachine",
        "states:UpdateStateMachine",
        "states:DescribeStateMachine",
        "states:ListStateMachines",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:GetExecutionHistory",
        "states:StopExecution",
        "states:TagResource",
        "iam:PassRole",
    ],
    "job logs (CloudWatch Logs)": [
        "logs:DescribeLogStreams",
        "logs:GetLogEvents",
        "logs:DescribeLogGroups",
    ],
    "ECS and Lambda (for the state machine role)": [
        "ecs:RunTask",
        "ecs:StopTask",
        "ecs:DescribeTasks",
        "lambda:InvokeFunction",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    ],
}
"""What bunsui's own user needs (and, last, what the state machine role needs)."""


class InitInput(ActionInput):
    """Where to create the tables."""

    endpoint_url: str | None = Field(
        None, description="DynamoDB endpoint (e.g. a local DynamoDB or moto server)."
    )


class InitOutput(ActionOutput):
    """What `aws init` did."""

    table_prefix: str = Field(description="Prefix of bunsui's tables.")
    region: str | None = Field(description="Region (from config.yaml or boto3's chain).")
    created: list[str] = Field(description="Tables and indexes created; empty when all existed.")


def _store(settings: Settings, endpoint_url: str | None = None) -> Any:
    from bunsui_core.store.dynamodb import DynamoDBStore  # noqa: PLC0415 - boto3 on demand

    aws = settings.aws
    if endpoint_url:
        aws = dataclasses.replace(aws, endpoint_url=endpoint_url)
    return DynamoDBStore(
        table_prefix=aws.table_prefix, region=aws.region, endpoint_url=aws.endpoint_url
    )


@REGISTRY.define(
    "aws:init",
    title="Create the AWS backend's tables",
    input_model=InitInput,
    output_model=InitOutput,
    effect=Effect.WRITE,
    idempotent=True,
)
def init(ctx: ActionContext, args: InitInput) -> InitOutput:
    """Create bunsui's DynamoDB tables and indexes where missing (idempotent: a second run
    creates nothing) and say what was done. Credentials come from boto3's chain only."""
    store = _store(ctx.settings, args.endpoint_url)
    try:
        created = store.create_tables()
    finally:
        store.close()
    return InitOutput(
        table_prefix=ctx.settings.aws.table_prefix, region=ctx.settings.aws.region, created=created
    )


class Check(ActionOutput):
    """One doctor check."""

    check: str = Field(description="What was checked.")
    ok: bool = Field(description="Whether it is fine.")
    detail: str = Field(description="What was found, or what to do.")


class DoctorOutput(ActionOutput):
    """Everything the AWS backend needs, checked."""

    ok: bool = Field(description="All checks passed.")
    checks: list[Check] = Field(description="Each check.")
    required_iam_actions: dict[str, list[str]] = Field(
        description="IAM actions bunsui needs, by purpose."
    )


class DoctorInput(ActionInput):
    """Where to check."""

    endpoint_url: str | None = Field(None, description="DynamoDB endpoint to check instead.")


@REGISTRY.define(
    "aws:doctor",
    title="Check the AWS backend",
    input_model=DoctorInput,
    output_model=DoctorOutput,
    effect=Effect.READ,
    idempotent=True,
)
def doctor(ctx: ActionContext, args: DoctorInput) -> DoctorOutput:
    """Check credentials (who bunsui runs as), every table and index, and access to Step
    Functions and CloudWatch Logs; say what is missing, with the exact IAM actions needed.
    Credentials and tokens are never printed."""
    import boto3  # noqa: PLC0415 - only the AWS commands pay for it

    aws = ctx.settings.aws
    session = boto3.session.Session(region_name=aws.region)
    endpoint = args.endpoint_url or aws.endpoint_url
    checks = [_identity(session, endpoint)]
    store = _store(ctx.settings, args.endpoint_url)
    try:
        for report in store.describe_tables():
            problems = report.problems + [f"missing index {i}" for i in report.missing_indexes]
            checks.append(
                Check(
                    check=f"table {report.name}",
                    ok=report.ok,
                    detail="; ".join(problems)
                    or ("ready" if report.exists else "missing: run `bunsui aws init`"),
                )
            )
    except BunsuiError as exc:
        checks.append(Check(check="tables", ok=False, detail=exc.message))
    finally:
        store.close()
    checks.append(
        _try(session, endpoint, "stepfunctions", "list_state_machines", "states:ListStateMachines")
    )
    checks.append(_try(session, endpoint, "logs", "describe_log_groups", "logs:DescribeLogGroups"))
    if not aws.state_machine_role_arn:
        checks.append(
            Check(
                check="state machine role",
                ok=False,
                detail="set aws.state_machine_role_arn in $BUNSUI_HOME/config.yaml",
            )
        )
    return DoctorOutput(
        ok=all(c.ok for c in checks), checks=checks, required_iam_actions=REQUIRED_IAM_ACTIONS
    )


def _identity(session: Any, endpoint: str | None) -> Check:
    try:
        who = session.client("sts", endpoint_url=endpoint).get_caller_identity()
    except Exception as exc:  # any failure here means "no usable credentials"
        return Check(
            check="credentials",
            ok=False,
            detail=f"no usable AWS credentials ({type(exc).__name__}); configure boto3's chain",
        )
    return Check(check="credentials", ok=True, detail=f"acting as {who['Arn']}")


ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def _try(
    session: Any, endpoint: str | None, service: str, operation: str, iam_action: str
) -> Check:
    client = session.client(service, endpoint_url=endpoint)
    try:
        getattr(client, operation)(**({"limit": 1} if service == "logs" else {}))
    except Exception as exc:  # reported, never raised
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        needs = f": grant {iam_action}" if code in ACCESS_DENIED else ""
        return Check(check=service, ok=False, detail=f"{code}{needs}")
    return Check(check=service, ok=True, detail="reachable")
