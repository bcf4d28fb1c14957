"""Pipeline actions: validate, register, list, describe, run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import job_order, require_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.actions.session_views import SessionDetail
from bunsui_core.engine.dispatch import check_can_run, launch
from bunsui_core.errors import NotFoundError
from bunsui_core.model.pipeline_loader import pipeline_id_for
from bunsui_core.model.project_loader import load_definition
from bunsui_core.model.session import Session, SessionStatus, new_id
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
    return source.parent.name if source.name == "bunsui.yaml" else source.stem


def _register(ctx: ActionContext, file: str, pipeline_id: str | None) -> PipelineVersion:
    loaded = load_definition(Path(file))
    chosen = pipeline_id or pipeline_id_for(loaded.pipeline, fallback=_fallback_id(loaded.source))
    return ctx.store.register_pipeline(chosen, loaded.pipeline, source=str(loaded.source.resolve()))


@REGISTRY.define(
    "pipeline:register",
    title="Register a pipeline version",
    input_model=PipelineRegisterInput,
    output_model=PipelineSummary,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("file",),
    bound_files=("file",),
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

    definition: dict[str, Any] = Field(description="The validated pipeline definition.")


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
        definition=record.pipeline.model_dump(mode="json"),
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


@REGISTRY.define(
    "pipeline:run",
    title="Run a pipeline",
    input_model=PipelineRunInput,
    output_model=SessionDetail,
    effect=Effect.WRITE,
    cli_arguments=("pipeline",),
    bound_files=("pipeline",),
)
def run(ctx: ActionContext, args: PipelineRunInput) -> SessionDetail:
    """Start a new session of a pipeline on the local engine. Returns the session: at once
    (status queued, a detached runner does the work) or, with wait, when it has finished."""
    path = Path(args.pipeline)
    if path.is_file() or path.is_dir():
        record = _register(ctx, args.pipeline, args.pipeline_id)
    elif path.suffix in {".yaml", ".yml"} or "/" in args.pipeline:
        raise NotFoundError(
            f"pipeline file {args.pipeline} not found", details={"pipeline": args.pipeline}
        )
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
