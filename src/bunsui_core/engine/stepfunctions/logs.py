"""Tails of the CloudWatch logs an operation wrote (ECS `awslogs` streams, Lambda log groups)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_TAIL_LINES = 50


@dataclass(frozen=True)
class LogTail:
    """The last lines of one log stream (no stream when nothing was found)."""

    log_group: str
    log_stream: str | None = None
    lines: list[str] = field(default_factory=list)


def ecs_log_stream(stream_prefix: str, container_name: str, task_arn: str) -> str:
    """The stream the `awslogs` driver writes a task's container to: prefix/container/task-id."""
    task_id = task_arn.rsplit("/", 1)[-1]
    return f"{stream_prefix}/{container_name}/{task_id}" if stream_prefix else task_id


def lambda_log_group(function: str) -> str:
    """Lambda's log group for a function name or ARN (qualifier dropped)."""
    name = function.split(":function:", 1)[1] if ":function:" in function else function
    return f"/aws/lambda/{name.split(':')[0]}"


def _newest_stream(logs: Any, log_group: str, stream_prefix: str) -> str | None:
    if stream_prefix:
        # AWS refuses orderBy=LastEventTime together with a prefix: compare them here.
        streams: list[dict[str, Any]] = []
        paginator = logs.get_paginator("describe_log_streams")
        for page in paginator.paginate(logGroupName=log_group, logStreamNamePrefix=stream_prefix):
            streams.extend(page["logStreams"])
    else:
        streams = logs.describe_log_streams(
            logGroupName=log_group, orderBy="LastEventTime", descending=True, limit=1
        )["logStreams"]
    if not streams:
        return None
    newest = max(
        streams,
        key=lambda s: (
            s.get("lastEventTimestamp") or s.get("creationTime") or 0,
            s["logStreamName"],
        ),
    )
    return str(newest["logStreamName"])


def log_tail(
    logs: Any, log_group: str, stream_prefix: str = "", limit: int = DEFAULT_TAIL_LINES
) -> LogTail:
    """The last `limit` lines of the newest stream whose name starts with `stream_prefix`.

    A missing group or stream is an empty tail, not an error: a task that never started
    writes no logs, and that is worth showing as it is.
    """
    try:
        stream = _newest_stream(logs, log_group, stream_prefix)
        if stream is None:
            return LogTail(log_group)
        events = logs.get_log_events(
            logGroupName=log_group, logStreamName=stream, limit=limit, startFromHead=False
        )["events"]
    except logs.exceptions.ResourceNotFoundException:
        return LogTail(log_group)
    return LogTail(log_group, stream, [str(e["message"]).rstrip("\n") for e in events])
