"""How the local engine runs project jobs (`dbt`, `python`, `duckdb_load`) as child processes.

Each attempt is planned (argv, extra environment, working directory) and, once its process
has ended, collected (dbt's node results and artifacts, one error per failed node). The
process itself goes through the same path as a `command` operation: same limits, timeout,
process-group kill and environment rules.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bunsui_core.engine.local_operations import local_argv
from bunsui_core.errors import EngineError, ErrorCode
from bunsui_core.model.dbt_nodes import RUN_RESULTS, NodeResult, NodeSplit, read_nodes, retry_split
from bunsui_core.model.pipeline import Operation, OperationType, Pipeline
from bunsui_core.model.project import (
    PARAMETER_MODELS,
    DbtParameters,
    ProjectParameters,
)
from bunsui_core.model.session import OperationAttempt, RunStatus
from bunsui_core.store.base import Store

PROJECT_TYPES = frozenset(PARAMETER_MODELS)
DBT_PROFILE_TARGET = "bunsui"
STDOUT_ERROR_LINES = 40


@dataclass(frozen=True)
class AttemptPlan:
    """What one attempt of an operation runs, beyond the engine's own environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    target_dir: Path | None = None


@dataclass(frozen=True)
class FailureReport:
    """One error record's text and facts (a dbt job has one per failed node)."""

    message: str
    context: dict[str, Any]


@dataclass(frozen=True)
class AttemptFacts:
    """What a finished attempt left behind; `failures` None means the engine's own report."""

    nodes: list[NodeResult] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    failures: list[FailureReport] | None = None


REQUIRED_MODULES: dict[OperationType, tuple[str, ...]] = {
    OperationType.DBT: ("dbt", "dbt.adapters.duckdb", "duckdb"),
    OperationType.DUCKDB_LOAD: ("duckdb",),
}
"""What each project operation type imports in its child process (the `bunsui[dbt]` extra)."""


def check_project_runnable(pipeline: Pipeline) -> None:
    """ENGINE_UNSUPPORTED before a session exists when a job's libraries are not installed."""
    kinds = {op.config.operation_type for job in pipeline.jobs for op in job.operations}
    missing = sorted(
        {
            module
            for kind in kinds
            for module in REQUIRED_MODULES.get(kind, ())
            if importlib.util.find_spec(module) is None
        }
    )
    if missing:
        raise EngineError(
            f"this pipeline's dbt/duckdb_load jobs need {', '.join(missing)}: "
            "pip install 'bunsui[dbt]'",
            code=ErrorCode.ENGINE_UNSUPPORTED,
            details={"missing": missing},
        )


def parameters_of(operation: Operation) -> ProjectParameters:
    """The typed parameters of a project operation (validated when the pipeline was)."""
    return PARAMETER_MODELS[operation.config.operation_type].model_validate(
        operation.config.parameters
    )


def plan_attempt(
    operation: Operation,
    *,
    project_dir: Path,
    workdir: Path,
    attempt: int,
    retry_state: Path | None,
) -> AttemptPlan:
    """The argv and environment of one attempt. `retry_state` is the target directory of the
    run to continue: a dbt attempt then runs `dbt retry` (only failed and skipped nodes)."""
    kind = operation.config.operation_type
    if kind not in PROJECT_TYPES:
        return AttemptPlan(argv=local_argv(operation.config))
    params = parameters_of(operation)
    warehouse = (project_dir / params.warehouse).resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    env = {"BUNSUI_WAREHOUSE": str(warehouse), "BUNSUI_PROJECT_DIR": str(project_dir)}
    if kind is OperationType.DBT:
        return _dbt_plan(
            DbtParameters.model_validate(operation.config.parameters),
            entry=local_argv(operation.config),
            project_dir=project_dir,
            workdir=workdir,
            attempt=attempt,
            retry_state=retry_state,
            warehouse=warehouse,
            env=env,
        )
    return AttemptPlan(argv=local_argv(operation.config), env=env)


def _dbt_plan(
    params: DbtParameters,
    *,
    entry: list[str],
    project_dir: Path,
    workdir: Path,
    attempt: int,
    retry_state: Path | None,
    warehouse: Path,
    env: dict[str, str],
) -> AttemptPlan:
    dbt_dir = (project_dir / params.dbt_dir).resolve()
    run_dir = workdir / "dbt" / str(attempt)
    target = run_dir / "target"
    profiles_dir = dbt_dir if (dbt_dir / "profiles.yml").is_file() else run_dir
    if profiles_dir == run_dir:
        write_profiles(run_dir, dbt_dir, warehouse, params.threads or 1)
    common = [
        "--project-dir",
        str(dbt_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--target-path",
        str(target),
        "--log-path",
        str(run_dir / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-use-colors",
    ]
    if params.target:
        common += ["--target", params.target]
    if params.threads:
        common += ["--threads", str(params.threads)]
    if params.vars:
        common += ["--vars", json.dumps(params.vars, sort_keys=True)]
    dbt = entry
    if retry_state is not None:
        argv = [*dbt, "retry", *common, "--state", str(retry_state)]
    else:
        argv = [*dbt, params.command.value, *common]
        for flag, value in (("--select", params.select), ("--exclude", params.exclude)):
            if value:
                argv += [flag, *([value] if isinstance(value, str) else value)]
        if params.full_refresh:
            argv.append("--full-refresh")
    return AttemptPlan(argv=argv, env=env, cwd=dbt_dir, target_dir=target)


def write_profiles(directory: Path, dbt_dir: Path, warehouse: Path, threads: int) -> Path:
    """A profiles.yml pointing the dbt project's profile at the project's DuckDB file."""
    profile = _profile_name(dbt_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "profiles.yml"
    content = {
        profile: {
            "target": DBT_PROFILE_TARGET,
            "outputs": {
                DBT_PROFILE_TARGET: {"type": "duckdb", "path": str(warehouse), "threads": threads}
            },
        }
    }
    path.write_text(yaml.safe_dump(content, sort_keys=True), encoding="utf-8")
    return path


def _profile_name(dbt_dir: Path) -> str:
    """The `profile:` of dbt_project.yml (dbt's default: the project's name)."""
    try:
        data = yaml.safe_load((dbt_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return "default"
    if not isinstance(data, dict):
        return "default"
    return str(data.get("profile") or data.get("name") or "default")


def collect_attempt(
    plan: AttemptPlan,
    *,
    succeeded: bool,
    stdout_path: Path,
    artifacts_dir: Path | None,
) -> AttemptFacts:
    """dbt's node results and artifacts, and the failed nodes as separate failures."""
    if plan.target_dir is None:
        return AttemptFacts()
    nodes = read_nodes(plan.target_dir)
    artifacts = {
        name.removesuffix(".json"): str(plan.target_dir / name)
        for name in (RUN_RESULTS, "manifest.json")
        if (plan.target_dir / name).is_file()
    }
    if artifacts_dir is not None and "run_results" in artifacts:
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        copy = shutil.copyfile(artifacts["run_results"], artifacts_dir / RUN_RESULTS)
        artifacts["run_results_copy"] = str(copy)
    if succeeded:
        return AttemptFacts(nodes=nodes or [], artifacts=artifacts)
    command = plan.argv[3]
    if nodes is None:
        return AttemptFacts(artifacts=artifacts, failures=[_before_nodes(command, stdout_path)])
    failures = [_node_failure(command, node) for node in nodes if node.failed]
    return AttemptFacts(nodes=nodes, artifacts=artifacts, failures=failures or None)


def _node_failure(command: str, node: NodeResult) -> FailureReport:
    """One failed node as an error record: the test and its rows, or the node's error."""
    if node.resource_type == "test" and node.status == "fail":
        rows = f"{node.failures} failing row{'s' if node.failures != 1 else ''}"
        headline = f"dbt test {node.name} failed on {node.parent_model or 'its model'}: {rows}"
    else:
        headline = f"dbt {node.resource_type} {node.name} ({node.file or '?'}) {node.status}"
    message = headline + (f"\n{node.message}" if node.message else "")
    facts = {
        "dbt_command": command,
        "dbt_node": node.unique_id,
        "dbt_resource_type": node.resource_type,
        "dbt_status": node.status,
        "dbt_test": node.name if node.resource_type == "test" else None,
        "model": node.parent_model if node.resource_type == "test" else node.name,
        "column": node.column,
        "failures": node.failures,
        "file": node.file,
        "failing_rows_query": node.failing_rows_query,
        "failing_rows": node.failing_rows or None,
    }
    return FailureReport(message, {k: v for k, v in facts.items() if v is not None})


def _before_nodes(command: str, stdout_path: Path) -> FailureReport:
    """dbt stopped before running a node (parse or project error): its report from stdout."""
    try:
        lines = stdout_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    start = next(
        (i for i, line in enumerate(lines) if "Encountered an error" in line or "Error" in line),
        max(0, len(lines) - STDOUT_ERROR_LINES),
    )
    text = "\n".join(lines[start : start + STDOUT_ERROR_LINES]).strip()
    return FailureReport(
        f"dbt {command} failed before running any node\n{text}",
        {"dbt_command": command, "dbt_phase": "parse"},
    )


def unfinished_dbt_attempt(store: Store, session_id: str, job_id: str) -> OperationAttempt | None:
    """The last attempt of a dbt job that did not complete in a session, if dbt recorded its
    nodes: the run a rerun continues with `dbt retry`."""
    previous = {r.job_id: r for r in store.list_job_runs(session_id)}.get(job_id)
    if previous is None or previous.status in {RunStatus.COMPLETED, RunStatus.SKIPPED}:
        return None
    for op_run in store.list_operation_runs(session_id, job_id):
        last = op_run.attempts[-1] if op_run.attempts else None
        if last is not None and last.nodes and "run_results" in last.artifacts:
            return last
    return None


def dbt_rerun_nodes(
    store: Store, session_id: str, pipeline: Pipeline, jobs_to_run: list[str], *, full: bool
) -> dict[str, NodeSplit]:
    """For each dbt job a rerun of `session_id` runs: the nodes it runs again (failed or
    skipped) and those it leaves alone. A job absent from the result runs its whole command
    (it completed before, dbt stopped before any node, or the rerun is `full`)."""
    if full:
        return {}
    dbt_jobs = {
        j.job_id
        for j in pipeline.jobs
        if any(op.config.operation_type is OperationType.DBT for op in j.operations)
    }
    split = {}
    for job_id in jobs_to_run:
        if job_id in dbt_jobs:
            attempt = unfinished_dbt_attempt(store, session_id, job_id)
            if attempt is not None:
                split[job_id] = retry_split(attempt.nodes)
    return split
