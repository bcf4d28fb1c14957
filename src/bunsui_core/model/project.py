"""Project jobs (`dbt`, `python`, `duckdb_load`): what their configs may say, typed.

The same models check a project's `jobs/*.yaml` and the `parameters` of an operation of
those types in a plain pipeline file, and the engine reads an operation's parameters
through them, so what validates is exactly what runs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.model.pipeline import OperationType

DEFAULT_WAREHOUSE = ".bunsui/warehouse.duckdb"
DEFAULT_DBT_DIR = "dbt"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
COLUMN_TYPE = r"^[A-Za-z][A-Za-z0-9_]*(\(\d+(, ?\d+)?\))?(\[\])?$"


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a job config must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ExecutionMode(StrEnum):
    """Upstream's job execution mode; every job runs in its own child process either way."""

    SYNC = "sync"
    ASYNC = "async"


class ProjectParameters(_Strict):
    """What every project operation gets: its warehouse, limits and environment."""

    warehouse: str = Field(
        DEFAULT_WAREHOUSE, min_length=1, description="DuckDB file, relative to the project."
    )
    memory: int | None = Field(None, ge=1, description="Memory limit in MiB.")
    env: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra environment of the job's process."
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="Launcher variables (names or patterns like AWS_*) the job may see.",
    )
    execution_mode: ExecutionMode = ExecutionMode.SYNC


class DbtCommand(StrEnum):
    """dbt commands a job may run (those that write run_results.json)."""

    BUILD = "build"
    RUN = "run"
    TEST = "test"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    COMPILE = "compile"


Selection = str | list[str]


class DbtParameters(ProjectParameters):
    """A `dbt` operation: one dbt command in the project's dbt directory."""

    command: DbtCommand = DbtCommand.BUILD
    select: Selection | None = None
    exclude: Selection | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    full_refresh: bool = False
    threads: int | None = Field(None, ge=1, le=64)
    target: str | None = None
    dbt_dir: str = Field(DEFAULT_DBT_DIR, min_length=1, description="Relative to the project.")
    artifacts_dir: str | None = Field(
        None, description="Where run_results.json is also copied, relative to the project."
    )


class PythonParameters(ProjectParameters):
    """A `python` operation: `module:function` called in a child process."""

    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class LoadMode(StrEnum):
    """What a load does to an existing table."""

    REPLACE = "replace"
    APPEND = "append"


class DuckdbLoadParameters(ProjectParameters):
    """A `duckdb_load` operation: one CSV or Parquet file into a warehouse table."""

    path: str = Field(min_length=1, description="File to load, relative to the project.")
    table: str = Field(pattern=IDENTIFIER)
    mode: LoadMode = LoadMode.REPLACE
    format: Literal["auto", "csv", "parquet"] = "auto"
    header: bool = True
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    columns: dict[str, Annotated[str, Field(pattern=COLUMN_TYPE)]] = Field(
        default_factory=dict,
        description="CSV column types (name: DuckDB type); a value that does not fit is a bad row.",
    )


PARAMETER_MODELS: dict[OperationType, type[ProjectParameters]] = {
    OperationType.DBT: DbtParameters,
    OperationType.PYTHON: PythonParameters,
    OperationType.DUCKDB_LOAD: DuckdbLoadParameters,
}
"""The project operation types and the model of their parameters."""


class _JobLimits(_Strict):
    """Config keys of a project job that become the operation's retry and timeout."""

    retries: int = Field(0, ge=0, le=99, description="Attempts after the first.")
    retry_delay_seconds: float = Field(0, ge=0, le=3600)
    timeout_seconds: int | None = Field(None, ge=1, le=7 * 24 * 3600)


class DbtJobConfig(DbtParameters, _JobLimits):
    """`config:` of a `type: dbt` job."""


class PythonJobConfig(PythonParameters, _JobLimits):
    """`config:` of a `type: python` job."""


class DuckdbLoadJobConfig(DuckdbLoadParameters, _JobLimits):
    """`config:` of a `type: duckdb_load` job."""


JOB_CONFIG_MODELS: dict[str, type[_JobLimits]] = {
    OperationType.DBT.value: DbtJobConfig,
    OperationType.PYTHON.value: PythonJobConfig,
    OperationType.DUCKDB_LOAD.value: DuckdbLoadJobConfig,
}
LIMIT_KEYS = frozenset(_JobLimits.model_fields)


class ProjectPaths(_Strict):
    """`paths:` of bunsui.yaml, relative to the project directory."""

    meta_dir: str = ".bunsui"
    sqlite: str = ".bunsui/control.sqlite"
    duckdb: str = DEFAULT_WAREHOUSE
    dbt: str = DEFAULT_DBT_DIR
    artifacts: str = "artifacts"
    logs: str = "logs"


class ProjectDefaults(_Strict):
    """`defaults:` of bunsui.yaml."""

    job_execution_mode: ExecutionMode = ExecutionMode.SYNC


class ProjectJob(_Strict):
    """One job of a project, as written in `jobs/*.yaml` or inline under `jobs:`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)
    type: Literal["dbt", "python", "duckdb_load"]
    description: str = ""
    execution_mode: ExecutionMode | None = None
    depends_on: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)


class ProjectFile(_Strict):
    """bunsui.yaml: the project's name, paths and (optionally) inline jobs."""

    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    version: str | int | float = 1
    paths: ProjectPaths = Field(default_factory=ProjectPaths)
    artifact_retention_days: int | None = Field(None, ge=0)
    defaults: ProjectDefaults = Field(default_factory=ProjectDefaults)
    max_concurrent_jobs: int = Field(
        1, ge=1, le=256, description="DuckDB allows one writing process per file: 1 by default."
    )
    timeout_seconds: int | None = Field(None, ge=1, le=30 * 24 * 3600)
    tags: dict[str, str] = Field(default_factory=dict)
    jobs: list[Any] = Field(default_factory=list)
