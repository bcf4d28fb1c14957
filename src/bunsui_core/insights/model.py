"""An insight as agents and people read it: evidence, the exact change, an honest confidence."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from bunsui_core.insights.history import JobSample, RunSample
from bunsui_core.model.insight import InsightStatus, InsightVerdict


class InsightKind(StrEnum):
    """Preventive: fix it before it fails. Cost: stop paying for unused capacity.
    Performance: finish sooner."""

    PREVENTIVE = "preventive"
    COST = "cost"
    PERFORMANCE = "performance"


class EvidencePoint(BaseModel):
    """One run's number the insight rests on."""

    session_id: str = Field(description="Session (run) the number comes from.")
    created_at: str = Field(description="When that run was created.")
    pipeline_version: int = Field(description="Pipeline version it ran.")
    value: float | None = Field(description="The measured value (unit in the evidence).")
    limit: float | None = Field(None, description="The limit it ran under, if any.")
    status: str = Field(description="How the job (or session) ended.")


class Evidence(BaseModel):
    """The numbers per run and what was computed from them."""

    metric: str = Field(description="What `value` measures, e.g. peak_rss_mb, wall_seconds.")
    unit: str = Field(description="Unit of value and limit: MiB, seconds, share, GiB-hours.")
    points: list[EvidencePoint] = Field(description="Per run, oldest first.")
    summary: dict[str, float | int | str | None] = Field(
        default_factory=dict, description="Computed figures (trend slope, r², p90, ...)."
    )


class Suggestion(BaseModel):
    """The change, as a command that runs through the ordinary actions."""

    action: str = Field(
        description="Registry action the command runs, e.g. pipeline:update-config."
    )
    command: str = Field(description="A `bunsui ...` line; `insight apply` runs exactly this.")
    change: dict[str, dict[str, float | int | str | None]] = Field(
        default_factory=dict, description="Setting -> {before, after}."
    )


class EstimatedEffect(BaseModel):
    """What applying should achieve, in numbers the next runs are checked against."""

    summary: str = Field(description="One sentence.")
    metric: str = Field(description="What is estimated, e.g. wall_seconds_per_run.")
    amount: float | None = Field(description="The estimated change (unit below).")
    unit: str = Field(description="Unit of amount.")


class ConfidenceBasis(BaseModel):
    """What a confidence rests on: the fit to the runs, and what applying it taught before."""

    runs: int = Field(description="Runs the evidence covers.")
    fit: float = Field(description="How well the runs support the rule (0-1), before learning.")
    fit_method: str = Field(description="How fit was measured, e.g. r² of a linear trend.")
    prior: float = Field(description="Confidence from the runs alone: fit x runs/(runs+2).")
    successes: int = Field(description="Earlier applications of this rule that helped.")
    failures: int = Field(description="Earlier applications of this rule that did not.")


class Outcome(BaseModel):
    """After apply: the baseline the next runs are compared with, and the verdict once known."""

    applied_at: str = Field(description="When the change was applied.")
    applied_version: int | None = Field(description="Pipeline version the change created.")
    baseline: dict[str, float] = Field(description="Figures before the change.")
    verdict: InsightVerdict | None = Field(description="helped / did_not_help; null: too soon.")
    runs_since: int = Field(description="Finished runs since the change.")


class Insight(BaseModel):
    """One thing worth doing about a pipeline, with the runs that show it."""

    insight_id: str = Field(description="Stable id per (pipeline, job, kind, rule).")
    kind: InsightKind = Field(description="preventive, cost or performance.")
    rule: str = Field(description="The rule that produced it, e.g. memory_near_limit.")
    pipeline_id: str = Field(description="Pipeline it concerns.")
    job_id: str | None = Field(description="Job it concerns; null for the whole pipeline.")
    title: str = Field(description="One line.")
    evidence: Evidence = Field(description="The numbers per run it rests on.")
    suggestion: Suggestion = Field(description="The change to make.")
    confidence: float = Field(description="0-1; see confidence_basis for what it rests on.")
    confidence_basis: ConfidenceBasis = Field(description="Runs, fit and learned outcomes.")
    estimated_effect: EstimatedEffect = Field(description="What applying should achieve.")
    created_at: str = Field(description="When the newest run it rests on was recorded.")
    status: InsightStatus = Field(description="open, applied or dismissed.")
    status_reason: str | None = Field(None, description="Why it was dismissed, by whom.")
    outcome: Outcome | None = Field(None, description="After apply: baseline and verdict.")


def insight_id_for(pipeline_id: str, job_id: str | None, kind: InsightKind, rule: str) -> str:
    """`ins-<pipeline>-<8 hex>`: the same finding always gets the same id, and the id names
    its pipeline so a lookup reads one pipeline's history only."""
    key = "\x1f".join([pipeline_id, job_id or "", kind.value, rule])
    return f"ins-{pipeline_id}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def pipeline_of(insight_id: str) -> str | None:
    """The pipeline an insight id names, or None when it is not an insight id."""
    if not insight_id.startswith("ins-"):
        return None
    pipeline_id, sep, digest = insight_id[4:].rpartition("-")
    if not sep or not pipeline_id or len(digest) != 8:
        return None
    return pipeline_id


def command(*words: str | int | float) -> str:
    """A `bunsui ...` line, quoted like a shell would need (it is parsed without one)."""
    return shlex.join(["bunsui", *(str(w) for w in words)])


CONFIG_OPTIONS = {
    "memory_mb": "--memory",
    "timeout_seconds": "--timeout",
    "retry_interval_seconds": "--retry-interval",
    "max_concurrent_jobs": "--max-concurrent-jobs",
    "version": "--revert-to",
}
"""Setting a suggestion changes -> the `pipeline update-config` option that sets it."""


def config_change(
    pipeline_id: str, setting: str, before: int | float, after: int | float, *, job_id: str | None
) -> Suggestion:
    """The `pipeline update-config` suggestion that moves one setting from before to after
    (a job's setting when job_id is given), with the diff `insight apply` will show."""
    scope = ("--job", job_id) if job_id is not None else ()
    return Suggestion(
        action="pipeline:update-config",
        command=command(
            "pipeline", "update-config", pipeline_id, *scope, CONFIG_OPTIONS[setting], after
        ),
        change={setting: {"before": before, "after": after}},
    )


def job_points(
    samples: Sequence[tuple[RunSample, JobSample]],
    values: Sequence[float | None],
    limits: Sequence[float | None] | None = None,
) -> list[EvidencePoint]:
    """One evidence point per run of a job: its value (and limit), and how the job ended."""
    return [
        _point(run, value, None if limits is None else limits[n], str(job.status))
        for n, ((run, job), value) in enumerate(zip(samples, values, strict=True))
    ]


def run_points(runs: Sequence[RunSample], values: Sequence[float | None]) -> list[EvidencePoint]:
    """One evidence point per run of the pipeline, with how the run ended."""
    return [_point(run, value, None, run.status) for run, value in zip(runs, values, strict=True)]


def _point(run: RunSample, value: float | None, limit: float | None, status: str) -> EvidencePoint:
    return EvidencePoint(
        session_id=run.session_id,
        created_at=run.created_at,
        pipeline_version=run.pipeline_version,
        value=None if value is None else round(value, 3),
        limit=limit,
        status=status,
    )


class Finding(BaseModel):
    """What a rule found, before confidence learning and stored decisions are layered on."""

    kind: InsightKind
    rule: str
    job_id: str | None
    title: str
    evidence: Evidence
    suggestion: Suggestion
    estimated_effect: EstimatedEffect
    fit: float
    fit_method: str
    runs: int
    baseline: dict[str, float] = Field(
        default_factory=dict, description="Figures the runs after an apply are compared with."
    )
