"""Pipeline definitions: a DAG of jobs, each an ordered list of operations.

The field names are the YAML format bunsui pipelines already use (AWS files with
`operation_type: lambda`/`ecs` validate unchanged); `command` operations run locally.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

RESERVED_COMMAND_PARAMETERS = frozenset({"command", "memory", "env", "pass_env"})

PASS_ENV_PATTERN = re.compile(r"^[A-Za-z_*?\[][A-Za-z0-9_*?\[\]!-]*$")
"""A `pass_env` entry: a variable name or an fnmatch pattern over names (`AWS_*`)."""


class OperationType(StrEnum):
    """Where an operation runs: `command` and the project job types locally, the rest on AWS."""

    COMMAND = "command"
    DBT = "dbt"
    PYTHON = "python"
    DUCKDB_LOAD = "duckdb_load"
    LAMBDA = "lambda"
    ECS = "ecs"
    GLUE = "glue"
    EMR = "emr"
    SAGEMAKER = "sagemaker"


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a pipeline file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class RetryPolicy(_Strict):
    """How often a failed operation is tried again, Step Functions style."""

    max_attempts: int = Field(1, ge=1, le=100, description="Total attempts, the first included.")
    interval_seconds: float = Field(1.0, ge=0, le=3600, description="Wait before the 2nd attempt.")
    backoff_rate: float = Field(2.0, ge=1, le=10, description="Multiplier for each later wait.")
    max_delay_seconds: float = Field(300.0, ge=0, description="Cap on any single wait.")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before `attempt` (2, 3, ...); attempt 1 starts at once."""
        if attempt <= 1:
            return 0.0
        delay = self.interval_seconds * self.backoff_rate ** (attempt - 2)
        return float(min(delay, self.max_delay_seconds))


class OperationConfig(_Strict):
    """What an operation runs and with which limits."""

    operation_type: OperationType
    resource_arn: str | None = None
    timeout_seconds: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    parameters: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None

    @property
    def memory_limit_mb(self) -> int | None:
        """The memory limit in MiB (`parameters.memory`), if one is set."""
        value = self.parameters.get("memory")
        return int(value) if value is not None else None

    @property
    def pass_env(self) -> list[str]:
        """Launcher variables (names or patterns) this operation's process may inherit."""
        return [str(name) for name in self.parameters.get("pass_env") or []]

    def command_argv(self) -> list[str]:
        """The argv of a command operation; a string is split like a shell would, never run."""
        command = self.parameters["command"]
        return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]

    def process_parameters(self) -> dict[str, Any]:
        """Parameters the process gets as `BUNSUI_PARAMS` (all but the reserved ones)."""
        return {k: v for k, v in self.parameters.items() if k not in RESERVED_COMMAND_PARAMETERS}


class Operation(_Strict):
    """One step of a job."""

    operation_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    description: str = ""
    config: OperationConfig


class Job(_Strict):
    """A node of the DAG: operations run in order; dependencies name other jobs."""

    job_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    description: str = ""
    operations: list[Operation] = Field(min_length=1)
    dependencies: list[str] = Field(default_factory=list)


class Pipeline(_Strict):
    """A whole pipeline file after validation."""

    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    version: str = "1.0.0"
    timeout_seconds: int | None = Field(None, ge=1, le=30 * 24 * 3600)
    max_concurrent_jobs: int = Field(4, ge=1, le=256)
    tags: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    jobs: list[Job] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        """YAML reads `version: 1.0` as a float; the file's author meant the text."""
        return str(value) if isinstance(value, int | float) else value

    def job(self, job_id: str) -> Job:
        """The job with this id (the pipeline was validated, so ids are unique)."""
        return next(j for j in self.jobs if j.job_id == job_id)


def canonical_json(pipeline: Pipeline) -> str:
    """Stable JSON of a pipeline: equal content gives equal text, whatever the YAML layout."""
    return json.dumps(pipeline.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def content_hash(pipeline: Pipeline) -> str:
    """sha256 of the canonical JSON; registering the same content twice keeps one version."""
    return hashlib.sha256(canonical_json(pipeline).encode()).hexdigest()
