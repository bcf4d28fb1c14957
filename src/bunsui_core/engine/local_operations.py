"""What the local engine can run: each operation type it supports becomes one real process.

A new operation type plugs in with one entry: a function from its config to the argv to
run. Everything else (allow-listed environment with BUNSUI_PARAMS, memory limit, timeout,
retries, logs, whole-tree kill) is the same for every type.
"""

from __future__ import annotations

from collections.abc import Callable

from bunsui_core.model.pipeline import OperationConfig, OperationType

ArgvBuilder = Callable[[OperationConfig], list[str]]

LOCAL_ARGV: dict[OperationType, ArgvBuilder] = {
    OperationType.COMMAND: OperationConfig.command_argv,
}
"""Operation type -> the argv its process runs; types missing here need the aws backend."""


def local_argv(config: OperationConfig) -> list[str]:
    """The argv the local engine runs for this operation (its type was checked runnable)."""
    return LOCAL_ARGV[config.operation_type](config)
