"""Pipeline actions: validate, register, list, describe, run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import job_order, require_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.actions.session_views import SessionDetail
from bunsui_core.engine.dispatch import check_can_run, launch
from bunsui_core.errors import ConflictError, NotFoundError
from bunsui_core.governance.canonical import redact_secrets
from bunsui_core.governance.previews import Preview
from bunsui_core.model.path_kind import PathKind, kind_of
from bunsui_core.model.pipeline import Pipeline, content_hash
from bunsui_core.model.pipeline_loader import load_pipeline_source, pipeline_id_for
from bunsui_core.model.project_loader import PROJECT_FILE, load_definition, project_root
from bunsui_core.model.session import Session, SessionStatus, new_id
from bunsui_core.recovery.overrides import operation_settings
from bunsui_core.store.base import PipelineVersion


class PipelineFileInput(ActionInput):
    """A pipeline YAML file or a project directory."""

    file: str = Field(
        description="Path to the pipeline YAML file, or a project directory (or its bunsui.yaml)."
    )


class PipelineValidation(ActionOutput):
    """A pipeline that validated, with what it contains."""

    valid: bool = Field(description="Always true; problems are reported as PIPELINE_INVALID.")
    pipeline_id: str = Field(description="Id it registers under by default (from its name).")
    name: str = Field(description="Pipeline name.")
    job_order: list[str] = Field(description="Jobs in dependency order.")
    operations: int = Field(description="Number of operations across all jobs.")


@REGISTRY.define(
    "pipeline:validate",
    title="Validate a pipeline file",
    input_model=PipelineFileInput,
    output_model=PipelineValidation,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("file",),
    bound_files=("file",),
)
def validate(ctx: ActionContext, args: PipelineFileInput) -> PipelineValidation:
    """Check a pipeline YAML file without running or storing it. Reports every problem at
    once (duplicate ids, unknown dependencies, cycles, bad types, unknown keys, missing
    commands), each with its location such as `jobs[2].dependencies[0]`."""
    loaded = load_definition(Path(args.file))
    pipeline = loaded.pipeline
    return PipelineValidation(
        valid=True,
        pipeline_id=pipeline_id_for(pipeline, fallback=_fallback_id(loaded.source)),
        name=pipeline.name,
        job_order=job_order(pipeline),
        operations=sum(len(j.operations) for j in pipeline.jobs),
    )


class PipelineRegisterInput(PipelineFileInput):
    """A pipeline file and, optionally, the id to register it under."""

    pipeline_id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Id to register under; default from the name.",
    )


class PipelineSummary(ActionOutput):
    """A registered pipeline version."""

    pipeline_id: str = Field(description="Pipeline id.")
    version: int = Field(description="Version number; a new one for every content change.")
    name: str = Field(description="Pipeline name.")
    content_hash: str = Field(description="sha256 of the canonical content.")
    registered_at: str = Field(description="When this version was registered.")
    source: str | None = Field(description="File it was registered from.")
    jobs: int = Field(description="Number of jobs.")

    @classmethod
    def of(cls, record: PipelineVersion) -> PipelineSummary:
        """Project a stored version onto the summary shape."""
        return cls(
            pipeline_id=record.pipeline_id,
            version=record.version,
            name=record.pipeline.name,
            content_hash=record.content_hash,
            registered_at=record.registered_at,
            source=record.source,
            jobs=len(record.pipeline.jobs),
        )


def _fallback_id(source: Path) -> str:
    """A project is named for its directory, a pipeline file for its stem."""
    return source.parent.name if source.name == PROJECT_FILE else source.stem


SCRIPT_BYTES_BOUND = 64_000_000
"""A script named by an argv is hashed up to this size (its size is bound too)."""


@dataclass(frozen=True)
class PipelineSource:
    """A pipeline file (or project directory) read once: the sha256 of its bytes (of every
    file that defines the project) and the pipeline parsed from them."""

    path: Path
    sha256: str
    pipeline: Pipeline

    @property
    def definition_file(self) -> Path:
        """The file registered as the source: the pipeline file, or the project's bunsui.yaml."""
        return self.path / PROJECT_FILE if self.path.is_dir() else self.path


def _source(ctx: ActionContext, file: str) -> PipelineSource:
    """The file as this call sees it, read once: a ticket's check and the registration that
    follows use the same bytes, so flipping the file between them cannot run other content."""
    path = Path(file)
    key = f"pipeline-file:{path}"
    if key not in ctx.read_once:
        if project_root(path) is not None or kind_of(path) is PathKind.DIRECTORY:
            loaded = load_definition(path)
            digest = str(loaded.pipeline.metadata["project"]["files_sha256"])
            ctx.read_once[key] = PipelineSource(
                path=path.resolve(), sha256=digest, pipeline=loaded.pipeline
            )
        else:
            pipeline, data = load_pipeline_source(path)
            ctx.read_once[key] = PipelineSource(
                path=path.resolve(), sha256=hashlib.sha256(data).hexdigest(), pipeline=pipeline
            )
    source: PipelineSource = ctx.read_once[key]
    return source


def _target(ctx: ActionContext, source: PipelineSource, pipeline_id: str | None) -> str:
    """The id a file registers under. A file whose name resolves to a pipeline registered
    from another file needs the id given explicitly: a differently named file must not
    silently become someone else's pipeline's next version."""
    chosen = pipeline_id or pipeline_id_for(
        source.pipeline, fallback=_fallback_id(source.definition_file)
    )
    latest = ctx.store.get_pipeline(chosen)
    if (
        pipeline_id is None
        and latest is not None
        and latest.source is not None
        and latest.source != str(source.definition_file)
        and latest.content_hash != content_hash(source.pipeline)
    ):
        raise ConflictError(
            f"{source.path} would become version {latest.version + 1} of pipeline {chosen}, "
            f"which was registered from {latest.source}; pass --pipeline-id {chosen} to add "
            "a version from this file, or give the pipeline another name",
            details={"pipeline_id": chosen, "registered_from": latest.source},
        )
    return chosen


def _register(ctx: ActionContext, file: str, pipeline_id: str | None) -> PipelineVersion:
    source = _source(ctx, file)
    chosen = _target(ctx, source, pipeline_id)
    return ctx.store.register_pipeline(chosen, source.pipeline, source=str(source.definition_file))


def _script_digests(pipeline: Pipeline, cwd: Path | None) -> dict[str, str]:
    """sha256 of each file an argv names inside the pipeline's directory (relative paths
    resolve there, where the local engine runs commands): approving a run approves them."""
    if cwd is None:
        return {}
    root = cwd.resolve()
    digests: dict[str, str] = {}
    for job in pipeline.jobs:
        for op in job.operations:
            if not op.config.parameters.get("command"):
                continue
            for word in op.config.command_argv():
                try:
                    path = (root / word).resolve()
                    if path in (root, *digests) or not path.is_relative_to(root):
                        continue
                    if path.is_file():
                        with path.open("rb") as handle:
                            digests[str(path)] = hashlib.sha256(
                                handle.read(SCRIPT_BYTES_BOUND)
                            ).hexdigest()
                except (OSError, ValueError):
                    continue
    return digests


def _operations(pipeline: Pipeline, cwd: Path | None) -> dict[str, Any]:
    """Every operation's argv, cwd, environment and limits, by job."""
    return {
        job.job_id: {
            op.operation_id: {**operation_settings(op), "cwd": str(cwd) if cwd else None}
            for op in job.operations
        }
        for job in pipeline.jobs
    }


def _version_effect(ctx: ActionContext, source: PipelineSource, chosen: str) -> dict[str, Any]:
    """Whether registering creates a pipeline, a new version, or nothing new."""
    latest = ctx.store.get_pipeline(chosen)
    digest = content_hash(source.pipeline)
    if latest is None:
        return {"target": f"new pipeline {chosen}", "version": 1, "replaces_version": None}
    if latest.content_hash == digest:
        return {
            "target": f"unchanged: identical to version {latest.version} of {chosen}",
            "version": latest.version,
            "replaces_version": None,
        }
    return {
        "target": f"new version {latest.version + 1} of existing pipeline {chosen} "
        f"(replacing version {latest.version}, registered from {latest.source})",
        "version": latest.version + 1,
        "replaces_version": latest.version,
    }


def _file_preview(
    ctx: ActionContext, action: str, file: str, pipeline_id: str | None
) -> tuple[dict[str, Any], dict[str, str], str]:
    source = _source(ctx, file)
    chosen = _target(ctx, source, pipeline_id)
    version = _version_effect(ctx, source, chosen)
    cwd = source.definition_file.parent
    scripts = _script_digests(source.pipeline, cwd)
    effect = {
        "file": str(source.path),
        "file_sha256": source.sha256,
        "pipeline_id": chosen,
        "name": source.pipeline.name,
        **version,
        "content_hash": content_hash(source.pipeline),
        "operations": _operations(source.pipeline, cwd),
        "scripts": scripts,
    }
    summary = f"{action} {source.path} -> {version['target']}"
    return effect, {str(source.path): source.sha256, **scripts}, summary


def preview_register(ctx: ActionContext, args: PipelineRegisterInput) -> Preview:
    """The target pipeline id and version, and every operation the file defines."""
    effect, files, summary = _file_preview(ctx, "pipeline:register", args.file, args.pipeline_id)
    return Preview(summary=summary, effect=effect, files=files)


@REGISTRY.define(
    "pipeline:register",
    title="Register a pipeline version",
    input_model=PipelineRegisterInput,
    output_model=PipelineSummary,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("file",),
    bound_files=("file",),
    preview=preview_register,
)
def register(ctx: ActionContext, args: PipelineRegisterInput) -> PipelineSummary:
    """Validate a pipeline file and store it. Changed content becomes a new version;
    registering identical content again returns the existing version."""
    return PipelineSummary.of(_register(ctx, args.file, args.pipeline_id))


class PipelineListInput(ActionInput):
    """No arguments."""


class PipelineList(ActionOutput):
    """Every registered pipeline at its latest version."""

    pipelines: list[PipelineSummary] = Field(description="Latest version of each pipeline.")


@REGISTRY.define(
    "pipeline:list",
    title="List pipelines",
    input_model=PipelineListInput,
    output_model=PipelineList,
    effect=Effect.READ,
    idempotent=True,
)
def list_pipelines(ctx: ActionContext, _args: PipelineListInput) -> PipelineList:
    """List registered pipelines with their latest version."""
    return PipelineList(pipelines=[PipelineSummary.of(p) for p in ctx.store.list_pipelines()])


class PipelineDescribeInput(ActionInput):
    """Which pipeline version to show."""

    pipeline_id: str = Field(description="Pipeline id.")
    version: int | None = Field(None, ge=1, description="Version; the latest when omitted.")


class PipelineDetail(PipelineSummary):
    """A registered version with its full definition."""

    definition: dict[str, Any] = Field(
        description="The validated pipeline definition, secret-looking values redacted."
    )


@REGISTRY.define(
    "pipeline:describe",
    title="Describe a pipeline",
    input_model=PipelineDescribeInput,
    output_model=PipelineDetail,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("pipeline_id",),
)
def describe(ctx: ActionContext, args: PipelineDescribeInput) -> PipelineDetail:
    """Show a registered pipeline version (latest by default) with its jobs and operations."""
    record = require_pipeline(ctx.store, args.pipeline_id, args.version)
    return PipelineDetail(
        **PipelineSummary.of(record).model_dump(),
        definition=redact_secrets(record.pipeline.model_dump(mode="json")),
    )


class PipelineRunInput(ActionInput):
    """What to run and whether to wait for it."""

    pipeline: str = Field(
        description="A pipeline YAML file or project directory (registered first), or a "
        "pipeline id."
    )
    pipeline_id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Id to register a file under; default from name.",
    )
    wait: bool = Field(
        False,
        description="Run in the foreground and return the finished "
        "session; otherwise return at once with it queued.",
    )


def _names_file(pipeline: str) -> bool:
    """A file to register first (True), or a registered pipeline's id (False); a path that
    names no file is NOT_FOUND."""
    path = Path(pipeline)
    if kind_of(path) in {PathKind.FILE, PathKind.DIRECTORY}:
        return True
    if path.suffix in {".yaml", ".yml"} or "/" in pipeline:
        raise NotFoundError(f"pipeline file {pipeline} not found", details={"pipeline": pipeline})
    return False


def preview_run(ctx: ActionContext, args: PipelineRunInput) -> Preview:
    """The pipeline version a new session would run (registering a file first) and every
    operation's argv, cwd, environment and limits."""
    if _names_file(args.pipeline):
        effect, files, summary = _file_preview(ctx, "pipeline:run", args.pipeline, args.pipeline_id)
        return Preview(
            summary=f"{summary}; starts a new session running it", effect=effect, files=files
        )
    record = require_pipeline(ctx.store, args.pipeline)
    cwd = Path(record.source).parent if record.source else None
    scripts = _script_digests(record.pipeline, cwd)
    effect = {
        "pipeline_id": record.pipeline_id,
        "version": record.version,
        "content_hash": record.content_hash,
        "registered_from": record.source,
        "operations": _operations(record.pipeline, cwd),
        "scripts": scripts,
    }
    return Preview(
        summary=f"pipeline:run {record.pipeline_id} version {record.version}: starts a new "
        f"session running {', '.join(job_order(record.pipeline))}",
        effect=effect,
        files=scripts,
    )


@REGISTRY.define(
    "pipeline:run",
    title="Run a pipeline",
    input_model=PipelineRunInput,
    output_model=SessionDetail,
    effect=Effect.WRITE,
    cli_arguments=("pipeline",),
    bound_files=("pipeline",),
    preview=preview_run,
)
def run(ctx: ActionContext, args: PipelineRunInput) -> SessionDetail:
    """Start a new session of a pipeline on the local engine. Returns the session: at once
    (status queued, a detached runner does the work) or, with wait, when it has finished."""
    if _names_file(args.pipeline):
        record = _register(ctx, args.pipeline, args.pipeline_id)
    else:
        record = require_pipeline(ctx.store, args.pipeline)
    check_can_run(ctx.settings, record.pipeline)
    session = ctx.store.create_session(
        Session(
            session_id=new_id("ses"),
            pipeline_id=record.pipeline_id,
            pipeline_version=record.version,
            pipeline_name=record.pipeline.name,
            status=SessionStatus.QUEUED,
            requested_by=ctx.actor,
        )
    )
    session = launch(ctx.store, ctx.settings, session, wait=args.wait, progress=ctx.progress)
    return SessionDetail.load(ctx.store, session, job_order(record.pipeline))
