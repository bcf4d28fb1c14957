"""CloudWatch log tails on moto: newest stream, prefix, limit, missing groups."""

from __future__ import annotations

import time

from bunsui_core.engine.stepfunctions.logs import (
    LogTail,
    ecs_log_stream,
    lambda_log_group,
    log_tail,
)


def put(logs, group: str, stream: str, lines: list[str], *, at: int) -> None:
    if group not in {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}:
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": at + i, "message": line} for i, line in enumerate(lines)],
    )


class TestLogTail:
    def test_the_newest_stream_with_the_prefix_and_its_last_lines(self, logs):
        """Two attempts wrote two streams: the tail is the later one's last lines."""
        now = int(time.time() * 1000)
        put(logs, "/bunsui/etl", "bunsui/main/task-1", ["old 1", "old 2"], at=now - 60_000)
        put(logs, "/bunsui/etl", "bunsui/main/task-2", ["a", "b", "c\n"], at=now)
        put(logs, "/bunsui/etl", "other/main/task-3", ["unrelated"], at=now + 5)
        tail = log_tail(logs, "/bunsui/etl", "bunsui/main/", limit=2)
        assert tail == LogTail("/bunsui/etl", "bunsui/main/task-2", ["b", "c"])

    def test_without_a_prefix_the_most_recently_written_stream(self, logs):
        """Lambda writes a stream per container: the newest one is read."""
        now = int(time.time() * 1000)
        put(logs, "/aws/lambda/score", "2024/05/14/[$LATEST]aa", ["first"], at=now - 1000)
        put(logs, "/aws/lambda/score", "2024/05/14/[$LATEST]bb", ["second"], at=now)
        tail = log_tail(logs, "/aws/lambda/score")
        assert tail.lines == ["second"]

    def test_missing_groups_and_streams_are_empty_tails(self, logs):
        """A task that never started wrote nothing: that is an answer, not an error."""
        assert log_tail(logs, "/nope", "x") == LogTail("/nope")
        logs.create_log_group(logGroupName="/empty")
        assert log_tail(logs, "/empty", "bunsui/") == LogTail("/empty")
        assert log_tail(logs, "/empty") == LogTail("/empty")


class TestLocations:
    def test_ecs_and_lambda_log_locations(self):
        """awslogs names streams prefix/container/task-id; Lambda groups by function."""
        arn = "arn:aws:ecs:eu-west-1:111122223333:task/bunsui/0f1e2d3c4b5a49688776a5b4c3d2e1f0"
        assert ecs_log_stream("bunsui", "main", arn) == (
            "bunsui/main/0f1e2d3c4b5a49688776a5b4c3d2e1f0"
        )
        assert ecs_log_stream("", "main", arn) == "0f1e2d3c4b5a49688776a5b4c3d2e1f0"
        assert lambda_log_group("arn:aws:lambda:eu-west-1:1:function:score:live") == (
            "/aws/lambda/score"
        )
        assert lambda_log_group("score") == "/aws/lambda/score"
