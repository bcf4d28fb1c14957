"""Reading a project directory (`bunsui.yaml` + `jobs/*.yaml`) into a Pipeline.

A project job becomes a job with one operation of its type, so sessions, reruns, policy,
tickets and MCP treat a project exactly as a pipeline file. Problems are reported all at
once, each with the file it is in and the key path inside that file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bunsui_core.errors import PipelineInvalidError
from bunsui_core.model.dag import find_cycle
from bunsui_core.model.location import location
from bunsui_core.model.path_kind import PathKind, kind_of
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.pipeline_loader import (
    load_pipeline_file,
    parameter_problems,
    parse_yaml_text,
    read_pipeline_text,
    validate_pipeline_data,
)
from bunsui_core.model.project import (
    JOB_CONFIG_MODELS,
    LIMIT_KEYS,
    ProjectFile,
    ProjectJob,
)

PROJECT_FILE = "bunsui.yaml"
JOBS_DIR = "jobs"
MAX_DIGESTED_FILES = 5000
MAX_DIGESTED_BYTES = 50_000_000
DBT_SKIPPED_DIRS = frozenset({"target", "logs", "dbt_packages", "dbt_modules"})

Problem = dict[str, str]


@dataclass(frozen=True)
class LoadedDefinition:
    """A validated pipeline and the file it is registered from (bunsui.yaml for a project)."""

    pipeline: Pipeline
    source: Path


def project_root(path: Path) -> Path | None:
    """The project directory `path` names (the directory, or its bunsui.yaml), or None."""
    kind = kind_of(path)
    if kind is PathKind.DIRECTORY:
        return path if kind_of(path / PROJECT_FILE) is PathKind.FILE else None
    return path.parent if path.name == PROJECT_FILE and kind is PathKind.FILE else None


def load_definition(path: Path) -> LoadedDefinition:
    """A pipeline file or a project directory (or its bunsui.yaml), validated; a path that
    leads nowhere is read as a pipeline file, which reports it unreadable."""
    root = project_root(path)
    if root is not None:
        return LoadedDefinition(load_project(root), root / PROJECT_FILE)
    if kind_of(path) is PathKind.DIRECTORY:
        raise PipelineInvalidError(
            f"{path} is a directory without {PROJECT_FILE}",
            details={"source": str(path), "problems": []},
        )
    return LoadedDefinition(load_pipeline_file(path), path)


def load_project(root: Path) -> Pipeline:
    """Validate a project directory into a Pipeline, or raise PIPELINE_INVALID listing every
    problem with its file and key path."""
    problems: list[Problem] = []
    project = _project_file(root, problems)
    jobs = list(_jobs(root, project, problems))
    problems.extend(_graph_problems(jobs))
    if project is not None and not jobs and not problems:
        problems.append(
            _problem(PROJECT_FILE, ("jobs",), f"no jobs: add {JOBS_DIR}/*.yaml or inline jobs:")
        )
    if problems or project is None:
        count = len(problems)
        raise PipelineInvalidError(
            f"{root}: {count} problem{'s' if count != 1 else ''} in project",
            details={"source": str(root), "problems": problems},
        )
    data = _pipeline_data(project, [job for job, _ in jobs], project_digest(root, project))
    return validate_pipeline_data(data, source=str(root))


def _problem(file: str, loc: tuple[str | int, ...], message: str) -> Problem:
    return {"file": file, "location": location(loc), "message": message}


def _validation_problems(
    file: str, prefix: tuple[str | int, ...], exc: ValidationError
) -> Iterator[Problem]:
    for err in exc.errors(include_url=False):
        yield _problem(file, (*prefix, *err["loc"]), err["msg"])


def _read_yaml(path: Path, file: str, problems: list[Problem]) -> Any:
    """The YAML of one project file; unreadable or malformed files are problems of it."""
    try:
        return parse_yaml_text(read_pipeline_text(path), source=file)
    except PipelineInvalidError as exc:
        found = exc.details.get("problems") or [{"location": "(root)", "message": exc.message}]
        problems.extend({"file": file, **p} for p in found)
        return None


def _project_file(root: Path, problems: list[Problem]) -> ProjectFile | None:
    data = _read_yaml(root / PROJECT_FILE, PROJECT_FILE, problems)
    if data is None and problems:
        return None
    try:
        return ProjectFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(_validation_problems(PROJECT_FILE, (), exc))
        return None


def _jobs(
    root: Path, project: ProjectFile | None, problems: list[Problem]
) -> Iterator[tuple[ProjectJob, tuple[str, tuple[str | int, ...]]]]:
    """Every valid job with where it was defined: inline ones, then jobs/*.yaml by name."""
    if project is not None:
        for index, raw in enumerate(project.jobs):
            yield from _job(raw, PROJECT_FILE, ("jobs", index), problems)
    jobs_dir = root / JOBS_DIR
    files = sorted([*jobs_dir.glob("*.yaml"), *jobs_dir.glob("*.yml")]) if jobs_dir.is_dir() else []
    for path in files:
        file = f"{JOBS_DIR}/{path.name}"
        data = _read_yaml(path, file, problems)
        if isinstance(data, dict) and "jobs" in data:
            extra = sorted(set(data) - {"jobs"})
            if extra:
                problems.append(_problem(file, (extra[0],), "a jobs file has only `jobs:`"))
            entries = data["jobs"]
            if not isinstance(entries, list):
                problems.append(_problem(file, ("jobs",), "jobs must be a list"))
                continue
            for index, raw in enumerate(entries):
                yield from _job(raw, file, ("jobs", index), problems)
        elif isinstance(data, list):
            for index, raw in enumerate(data):
                yield from _job(raw, file, (index,), problems)
        elif isinstance(data, dict):
            yield from _job(data, file, (), problems)
        elif data is not None or not problems:
            problems.append(_problem(file, (), "a jobs file holds a job, a list, or `jobs:`"))


def _job(
    raw: Any, file: str, prefix: tuple[str | int, ...], problems: list[Problem]
) -> Iterator[tuple[ProjectJob, tuple[str, tuple[str | int, ...]]]]:
    try:
        job = ProjectJob.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_validation_problems(file, prefix, exc))
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            # Known by name, so its dependents are not also reported as unknown.
            # a placeholder known only by name: its type may be what failed validation
            placeholder = ProjectJob.model_construct(name=raw["name"], depends_on=[])  # type: ignore[call-arg]
            yield placeholder, (file, prefix)
        return
    where = location((*prefix, "config"))
    found = parameter_problems(where, JOB_CONFIG_MODELS[job.type], job.config)
    problems.extend({"file": file, **p} for p in found)
    yield job, (file, prefix)


def _graph_problems(
    jobs: list[tuple[ProjectJob, tuple[str, tuple[str | int, ...]]]],
) -> Iterator[Problem]:
    """Duplicate names, unknown or self dependencies, cycles."""
    seen: dict[str, str] = {}
    for job, (file, prefix) in jobs:
        if job.name in seen:
            yield _problem(
                file,
                (*prefix, "name"),
                f"duplicate job name {job.name!r} (also in {seen[job.name]})",
            )
        seen.setdefault(job.name, file)
    for job, (file, prefix) in jobs:
        for index, dep in enumerate(job.depends_on):
            if dep == job.name:
                yield _problem(
                    file, (*prefix, "depends_on", index), f"job {dep!r} depends on itself"
                )
            elif dep not in seen:
                yield _problem(file, (*prefix, "depends_on", index), f"unknown job {dep!r}")
    cycle = find_cycle({job.name: [d for d in job.depends_on if d in seen] for job, _ in jobs})
    if cycle:
        yield {
            "file": JOBS_DIR,
            "location": "depends_on",
            "message": f"dependency cycle: {' -> '.join(cycle)}",
        }


def _pipeline_data(project: ProjectFile, jobs: list[ProjectJob], digest: str) -> dict[str, Any]:
    """The pipeline a project stands for: one job per project job, one operation each."""
    return {
        "name": project.name,
        "description": project.description,
        "version": str(project.version),
        "timeout_seconds": project.timeout_seconds,
        "max_concurrent_jobs": project.max_concurrent_jobs,
        "tags": project.tags,
        "metadata": {
            "project": {
                "files_sha256": digest,
                "paths": project.paths.model_dump(mode="json"),
                "artifact_retention_days": project.artifact_retention_days,
            }
        },
        "jobs": [_job_data(project, job) for job in jobs],
    }


def _job_data(project: ProjectFile, job: ProjectJob) -> dict[str, Any]:
    config = dict(job.config)
    limits = JOB_CONFIG_MODELS[job.type].model_validate(config)
    parameters = {k: v for k, v in config.items() if k not in LIMIT_KEYS}
    parameters.setdefault("warehouse", project.paths.duckdb)
    parameters["execution_mode"] = (job.execution_mode or project.defaults.job_execution_mode).value
    if job.type == "dbt":
        parameters.setdefault("dbt_dir", project.paths.dbt)
        parameters.setdefault("artifacts_dir", project.paths.artifacts)
    retry = (
        {
            "max_attempts": limits.retries + 1,
            "interval_seconds": limits.retry_delay_seconds,
            "backoff_rate": 1,
        }
        if limits.retries
        else None
    )
    return {
        "job_id": job.name,
        "name": job.name,
        "description": job.description,
        "dependencies": job.depends_on,
        "operations": [
            {
                "operation_id": job.type,
                "name": f"{job.type} job {job.name}",
                "config": {
                    "operation_type": job.type,
                    "timeout_seconds": limits.timeout_seconds,
                    "retry": retry,
                    "parameters": parameters,
                },
            }
        ],
    }


def project_digest(root: Path, project: ProjectFile) -> str:
    """sha256 over every file that defines the project: bunsui.yaml, jobs/*.yaml and the dbt
    project (models, macros, tests, seeds, snapshots, dbt_project.yml...), by relative path,
    so editing a model registers a new version while moving the directory does not."""
    files = [root / PROJECT_FILE]
    jobs_dir = root / JOBS_DIR
    if jobs_dir.is_dir():
        files += sorted(
            p for p in jobs_dir.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file()
        )
    dbt_dir = root / project.paths.dbt
    if dbt_dir.is_dir():
        files += sorted(_dbt_files(dbt_dir))
    digest = hashlib.sha256()
    total = 0
    for count, path in enumerate(files):
        if count >= MAX_DIGESTED_FILES or total > MAX_DIGESTED_BYTES:
            raise PipelineInvalidError(
                f"{root}: the project has more than {MAX_DIGESTED_FILES} files or "
                f"{MAX_DIGESTED_BYTES} bytes to version",
                details={"source": str(root), "problems": []},
            )
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise PipelineInvalidError(
                f"cannot read project file {path}: {exc}",
                details={"source": str(root), "problems": []},
            ) from None
        total += len(content)
        relative = path.relative_to(root).as_posix().encode()
        digest.update(len(relative).to_bytes(4, "big") + relative)
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def _dbt_files(dbt_dir: Path) -> Iterator[Path]:
    """Regular files of a dbt project, without its build output or hidden files."""
    for path in dbt_dir.iterdir():
        if path.name.startswith(".") or path.is_symlink():
            continue
        if path.is_dir():
            if path.name not in DBT_SKIPPED_DIRS:
                yield from _dbt_files(path)
        elif path.is_file():
            yield path
