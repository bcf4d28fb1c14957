"""Pipeline actions computed from run history (stats, cost) and the change insights suggest
(update-config: a new pipeline version with some limits changed)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import require_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import NotFoundError
from bunsui_core.governance.file_access import PIPELINE_ID
from bunsui_core.governance.previews import Preview
from bunsui_core.insights._numbers import percentile
from bunsui_core.insights.cost import PipelineCost, pipeline_cost
from bunsui_core.insights.history import HISTORY_WINDOW, History, load_history
from bunsui_core.insights.model import command
from bunsui_core.insights.performance import critical_path, job_durations
from bunsui_core.insights.tuning import PipelineChange, tune_pipeline
from bunsui_core.model.pipeline import Pipeline, content_hash
from bunsui_core.model.session import RunStatus
from bunsui_core.store.base import PipelineVersion


class HistoryInput(ActionInput):
    """A pipeline and how many of its recent finished runs to look at."""

    pipeline_id: str = Field(pattern=PIPELINE_ID.pattern, description="Pipeline id.")
    runs: int = Field(HISTORY_WINDOW, ge=1, le=1000, description="Recent finished runs to use.")


def _history(ctx: ActionContext, args: HistoryInput) -> History:
    history = load_history(ctx.store, args.pipeline_id, window=args.runs)
    if history is None:
        raise NotFoundError(
            f"pipeline {args.pipeline_id} not found", details={"pipeline_id": args.pipeline_id}
        )
    return history


class Percentiles(ActionOutput):
    """p50 / p90 / max of one figure over the runs."""

    p50: float | None = Field(description="Median.")
    p90: float | None = Field(description="90th percentile.")
    max: float | None = Field(description="Largest.")

    @classmethod
    def of(cls, values: list[float]) -> Percentiles:
        """Percentiles of the values, rounded to milliseconds or KiB."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return cls(
            p50=rounded(percentile(values, 0.5)),
            p90=rounded(percentile(values, 0.9)),
            max=rounded(max(values, default=None)),
        )


class JobStats(ActionOutput):
    """One job over the recent runs."""

    job_id: str = Field(description="Job.")
    runs: int = Field(description="Runs in which the job ran.")
    failed: int = Field(description="Runs in which it did not complete.")
    retried: int = Field(description="Runs in which an operation needed more than one attempt.")
    duration_seconds: Percentiles = Field(description="Job wall time (completed runs).")
    peak_rss_mb: Percentiles = Field(description="Peak resident memory, MiB.")
    memory_limit_mb: int | None = Field(description="Limit in the latest run, MiB.")


class PipelineStats(ActionOutput):
    """Per-job duration and memory percentiles over recent runs, and the critical path."""

    pipeline_id: str = Field(description="Pipeline.")
    version: int = Field(description="Latest version.")
    runs: int = Field(description="Finished runs looked at.")
    completed: int = Field(description="Of which completed.")
    wall_seconds: Percentiles = Field(description="Session wall time.")
    jobs: list[JobStats] = Field(description="Per job, in the pipeline's order.")
    critical_path: list[str] = Field(description="Longest chain of jobs by median duration.")
    critical_path_seconds: float = Field(description="Its length.")


def _job_stats(history: History, job_id: str) -> JobStats:
    samples = [j for _, j in history.job_samples(job_id)]
    return JobStats(
        job_id=job_id,
        runs=len(samples),
        failed=sum(j.status is not RunStatus.COMPLETED for j in samples),
        retried=sum(j.attempts > 1 for j in samples),
        duration_seconds=Percentiles.of(
            [
                j.wall_seconds
                for j in samples
                if j.status is RunStatus.COMPLETED and j.wall_seconds is not None
            ]
        ),
        peak_rss_mb=Percentiles.of([j.peak_rss_mb for j in samples if j.peak_rss_mb is not None]),
        memory_limit_mb=samples[-1].memory_limit_mb if samples else None,
    )


@REGISTRY.define(
    "pipeline:stats",
    title="Duration and memory percentiles of a pipeline's jobs",
    input_model=HistoryInput,
    output_model=PipelineStats,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("pipeline_id",),
)
def stats(ctx: ActionContext, args: HistoryInput) -> PipelineStats:
    """Per job: duration and peak-memory p50/p90/max, failures and retries over the recent
    finished runs, plus the critical path (the chain of jobs that bounds the wall time)."""
    history = _history(ctx, args)
    path, length = critical_path(history.pipeline, job_durations(history))
    return PipelineStats(
        pipeline_id=history.pipeline_id,
        version=history.version,
        runs=len(history.runs),
        completed=sum(r.status == "completed" for r in history.runs),
        wall_seconds=Percentiles.of([r.wall_seconds for r in history.runs if r.wall_seconds]),
        jobs=[_job_stats(history, j.job_id) for j in history.pipeline.jobs],
        critical_path=path,
        critical_path_seconds=round(length, 3),
    )


@REGISTRY.define(
    "pipeline:cost",
    title="Memory cost of a pipeline",
    input_model=HistoryInput,
    output_model=PipelineCost,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("pipeline_id",),
)
def cost(ctx: ActionContext, args: HistoryInput) -> PipelineCost:
    """Reserved vs used memory (GiB-hours per month at the observed run frequency) per job,
    priced in dollars for jobs on Fargate or Lambda with the shipped public price table
    (its date and region are in the answer), and what the cost insights would save."""
    return pipeline_cost(_history(ctx, args))


class UpdateConfigInput(ActionInput):
    """Limits to change in a registered pipeline; the result is a new version."""

    pipeline_id: str = Field(pattern=PIPELINE_ID.pattern, description="Pipeline id.")
    job: str | None = Field(None, description="Job whose operations get the job settings.")
    memory: int | None = Field(None, ge=16, le=1_048_576, description="Memory limit in MiB.")
    timeout: int | None = Field(None, ge=1, le=7 * 24 * 3600, description="Timeout in seconds.")
    max_attempts: int | None = Field(
        None, ge=1, le=100, description="Attempts, the first included."
    )
    retry_interval: float | None = Field(
        None, ge=0, le=3600, description="Seconds before the second attempt."
    )
    max_concurrent_jobs: int | None = Field(
        None, ge=1, le=256, description="Jobs running at once (pipeline-wide)."
    )
    revert_to: int | None = Field(
        None, ge=1, description="Register version N's definition again instead."
    )
    reason: str | None = Field(None, max_length=500, description="Why, for the audit trail.")
    dry_run: bool = Field(False, description="Only show the diff; change nothing.")


class UpdateConfigOutput(ActionOutput):
    """The pipeline version now in force and what changed."""

    pipeline_id: str = Field(description="Pipeline.")
    from_version: int = Field(description="Version the change started from.")
    version: int = Field(description="Version in force (from_version when nothing changed).")
    diff: dict[str, dict[str, Any]] = Field(description="Changed settings: {before, after}.")
    dry_run: bool = Field(description="True when nothing was stored.")
    revert_command: str = Field(description="Command that undoes this change.")


def _change(
    ctx: ActionContext, args: UpdateConfigInput
) -> tuple[PipelineVersion, Pipeline, dict[str, Any]]:
    """The latest version, the definition the change makes of it, and the diff."""
    latest = require_pipeline(ctx.store, args.pipeline_id)
    if args.revert_to is not None:
        tuned = require_pipeline(ctx.store, args.pipeline_id, args.revert_to).pipeline
        diff = (
            {"definition": {"before": latest.version, "after": args.revert_to}}
            if tuned != latest.pipeline
            else {}
        )
        return latest, tuned, diff
    change = PipelineChange(
        job_id=args.job,
        memory_mb=args.memory,
        timeout_seconds=args.timeout,
        max_attempts=args.max_attempts,
        retry_interval_seconds=args.retry_interval,
        max_concurrent_jobs=args.max_concurrent_jobs,
    )
    tuned, diff = tune_pipeline(latest.pipeline, change)
    return latest, tuned, diff


def preview_update_config(ctx: ActionContext, args: UpdateConfigInput) -> Preview:
    """The version it starts from, the settings before -> after, and the new content's hash."""
    latest, tuned, diff = _change(ctx, args)
    target = latest.version + 1 if diff else latest.version
    changed = ", ".join(
        f"{name} {values['before']} -> {values['after']}" for name, values in diff.items()
    )
    return Preview(
        summary=f"pipeline:update-config {args.pipeline_id} v{latest.version} -> v{target}"
        + (f" ({args.job}): " if args.job else ": ")
        + (changed or "no change"),
        effect={
            "pipeline_id": args.pipeline_id,
            "from_version": latest.version,
            "target_version": target,
            "job": args.job,
            "diff": diff,
            "content_hash": content_hash(tuned),
        },
    )


@REGISTRY.define(
    "pipeline:update-config",
    title="Change a registered pipeline's limits",
    input_model=UpdateConfigInput,
    output_model=UpdateConfigOutput,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("pipeline_id",),
    preview_flag="dry_run",
    preview=preview_update_config,
)
def update_config(ctx: ActionContext, args: UpdateConfigInput) -> UpdateConfigOutput:
    """Register a new version of a pipeline with a job's memory (MiB), timeout, retry
    attempts or retry interval changed (for every operation of the job), or the pipeline's
    max_concurrent_jobs, or with an earlier version's definition (revert_to). Later runs of
    the pipeline id use it; running the YAML file again registers the file's content. Shows
    a before/after diff; with dry_run nothing is stored."""
    latest, tuned, diff = _change(ctx, args)
    version = latest.version
    if not args.dry_run and diff:
        version = ctx.store.register_pipeline(args.pipeline_id, tuned).version
    return UpdateConfigOutput(
        pipeline_id=args.pipeline_id,
        from_version=latest.version,
        version=version,
        diff=diff,
        dry_run=args.dry_run,
        revert_command=command(
            "pipeline", "update-config", args.pipeline_id, "--revert-to", latest.version
        ),
    )
