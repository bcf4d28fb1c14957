"""A registered pipeline with some limits changed: the new definition and a before/after diff.

Pure: the caller decides whether to register the result as a new version (the change) or
only show the diff (the dry run and the approval preview use the same function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bunsui_core.errors import InvalidArgumentError, NotFoundError
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import JobOverride


@dataclass(frozen=True)
class PipelineChange:
    """Settings to change; None leaves a setting as it is."""

    job_id: str | None = None
    memory_mb: int | None = None
    timeout_seconds: int | None = None
    max_attempts: int | None = None
    retry_interval_seconds: float | None = None
    max_concurrent_jobs: int | None = None

    @property
    def job_settings(self) -> dict[str, Any]:
        """The per-job settings given, by name."""
        named = {
            "memory_mb": self.memory_mb,
            "timeout_seconds": self.timeout_seconds,
            "max_attempts": self.max_attempts,
            "retry_interval_seconds": self.retry_interval_seconds,
        }
        return {k: v for k, v in named.items() if v is not None}


def _retry(config: dict[str, Any], change: PipelineChange) -> dict[str, Any]:
    """One operation's config dict with the retry settings applied."""
    retry = dict(config.get("retry") or {})
    if change.max_attempts is not None:
        retry["max_attempts"] = change.max_attempts
    if change.retry_interval_seconds is not None:
        retry["interval_seconds"] = change.retry_interval_seconds
    return {**config, "retry": retry}


def _settings(pipeline: Pipeline, job_id: str | None) -> dict[str, Any]:
    """The settings a change can touch, as they are now (a job's from its first operation)."""
    found: dict[str, Any] = {"max_concurrent_jobs": pipeline.max_concurrent_jobs}
    if job_id is not None:
        config = pipeline.job(job_id).operations[0].config
        found |= {
            "memory_mb": config.memory_limit_mb,
            "timeout_seconds": config.timeout_seconds,
            "max_attempts": config.retry.max_attempts if config.retry else 1,
            "retry_interval_seconds": config.retry.interval_seconds if config.retry else None,
        }
    return found


def tune_pipeline(pipeline: Pipeline, change: PipelineChange) -> tuple[Pipeline, dict[str, Any]]:
    """The changed pipeline (every operation of the job gets the job settings) and the diff."""
    if change.job_settings and change.job_id is None:
        raise InvalidArgumentError(
            "memory, timeout and retry settings belong to a job: give --job",
            details={"field": "job", "settings": sorted(change.job_settings)},
        )
    if change.job_id is not None and change.job_id not in {j.job_id for j in pipeline.jobs}:
        raise NotFoundError(
            f"pipeline has no job {change.job_id}",
            details={"job_id": change.job_id, "jobs": [j.job_id for j in pipeline.jobs]},
        )
    # memory and timeout go into every operation the way a rerun's override puts them there
    limits = JobOverride(memory_mb=change.memory_mb, timeout_seconds=change.timeout_seconds)
    overrides = {change.job_id: limits} if change.job_id is not None else {}
    data = apply_overrides(pipeline, overrides).model_dump(mode="json")
    if change.max_concurrent_jobs is not None:
        data["max_concurrent_jobs"] = change.max_concurrent_jobs
    if change.max_attempts is not None or change.retry_interval_seconds is not None:
        for job in data["jobs"]:
            if job["job_id"] == change.job_id:
                for operation in job["operations"]:
                    operation["config"] = _retry(operation["config"], change)
    tuned = Pipeline.model_validate(data)
    before, after = _settings(pipeline, change.job_id), _settings(tuned, change.job_id)
    diff = {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]}
    return tuned, diff
