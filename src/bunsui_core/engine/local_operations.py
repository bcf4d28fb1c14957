"""What the local engine can run: each operation type it supports becomes one real process.

A new operation type plugs in with one entry: a function from its config to the argv to
run. Everything else (allow-listed environment with BUNSUI_PARAMS, memory limit, timeout,
retries, logs, whole-tree kill) is the same for every type.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bunsui_core.model.pipeline import OperationConfig, OperationType

ArgvBuilder = Callable[[OperationConfig], list[str]]


def _child(module: str) -> ArgvBuilder:
    """A project job's child entry point, run by this interpreter (its config arrives in
    BUNSUI_PARAMS; a dbt attempt adds dbt's arguments, see engine.project_jobs)."""
    return lambda _config: [sys.executable, "-m", f"bunsui_core.engine.{module}"]


LOCAL_ARGV: dict[OperationType, ArgvBuilder] = {
    OperationType.COMMAND: OperationConfig.command_argv,
    OperationType.DBT: _child("dbt_job"),
    OperationType.PYTHON: _child("python_job"),
    OperationType.DUCKDB_LOAD: _child("duckdb_load"),
}
"""Operation type -> the argv its process runs; types missing here need the aws backend."""


def local_argv(config: OperationConfig) -> list[str]:
    """The argv the local engine runs for this operation (its type was checked runnable)."""
    return LOCAL_ARGV[config.operation_type](config)
