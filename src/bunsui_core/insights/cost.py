"""Cost insights and the pipeline cost summary.

Memory is reserved at the limit for as long as a job runs and used only up to its peak.
On the local engine that gap is shown as reserved vs used GiB-hours; on AWS it is priced
with the public Fargate and Lambda tables in `prices.yaml` (their date and region are part
of every answer), at the run frequency observed in the history.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from bunsui_core.insights._numbers import round_up, spread
from bunsui_core.insights.history import History, JobSample, RunSample
from bunsui_core.insights.model import (
    EstimatedEffect,
    Evidence,
    Finding,
    InsightKind,
    config_change,
    job_points,
)
from bunsui_core.model.pipeline import OperationType
from bunsui_core.model.session import RunStatus
from bunsui_core.model.timestamps import seconds_between

PRICES_PATH = Path(__file__).with_name("prices.yaml")
OVERPROVISIONED_RATIO = 0.5
"""Peak below half the limit in every recent run: the limit is far more than needed."""
OVERPROVISIONED_RUNS = 5
"""How many recent successful runs in a row must agree (at least 3 are needed)."""
RIGHT_SIZE_HEADROOM = 1.3
MIN_SAVING = 0.25
"""A right-size that frees less than a quarter of the limit is not worth a change."""
SECONDS_PER_MONTH = 30 * 24 * 3600


class PriceTable(BaseModel):
    """The shipped price table: where and when its numbers were true."""

    as_of: str = Field(description="Date the prices were read from the public pages.")
    region: str = Field(description="AWS region they are for.")
    currency: str = Field(description="Currency.")
    fargate_gb_hour: float = Field(description="Fargate price per GB of memory per hour.")
    lambda_gb_second: float = Field(description="Lambda price per GB-second.")


@cache
def price_table() -> PriceTable:
    """The shipped prices, read once."""
    raw = yaml.safe_load(PRICES_PATH.read_text(encoding="utf-8"))
    return PriceTable(
        as_of=str(raw["as_of"]),
        region=raw["region"],
        currency=raw["currency"],
        fargate_gb_hour=raw["fargate"]["gb_hour"],
        lambda_gb_second=raw["lambda"]["gb_second"],
    )


def platform_of(history: History, job_id: str) -> str:
    """Where the job's operations run: fargate (ecs), lambda, or local."""
    types = {op.config.operation_type for op in history.pipeline.job(job_id).operations}
    if OperationType.ECS in types:
        return "fargate"
    if OperationType.LAMBDA in types:
        return "lambda"
    return "local"


def dollars_for(platform: str, gib_hours: float) -> float | None:
    """Price of reserved memory on AWS; None on the local engine (nothing is billed)."""
    prices = price_table()
    if platform == "fargate":
        return gib_hours * prices.fargate_gb_hour
    if platform == "lambda":
        return gib_hours * 3600 * prices.lambda_gb_second
    return None


def runs_per_month(runs: list[RunSample]) -> float:
    """Observed frequency: runs over the span they were created in, scaled to 30 days."""
    if len(runs) < 2:
        return float(len(runs))
    span = seconds_between(runs[0].created_at, runs[-1].created_at)
    if span <= 0:
        return float(len(runs))
    return (len(runs) - 1) / span * SECONDS_PER_MONTH


def _over_provisioned(history: History, job_id: str) -> Finding | None:
    """The last runs all peaked far below the limit: right-size to peak plus headroom."""
    samples = [
        (r, j)
        for r, j in history.job_samples(job_id)
        if j.status is RunStatus.COMPLETED and j.memory_ratio is not None
    ][-OVERPROVISIONED_RUNS:]
    if len(samples) < 3:
        return None
    limit = samples[-1][1].memory_limit_mb or 0
    if any(
        j.memory_limit_mb != limit or (j.memory_ratio or 1) >= OVERPROVISIONED_RATIO
        for _, j in samples
    ):
        return None
    peaks = [j.peak_rss_mb or 0.0 for _, j in samples]
    new_limit = round_up(max(peaks) * RIGHT_SIZE_HEADROOM, 64)
    if new_limit > limit * (1 - MIN_SAVING):
        return None
    platform = platform_of(history, job_id)
    per_month = runs_per_month(history.runs)
    hours = sum((j.run_seconds for _, j in samples)) / len(samples) / 3600
    saved = (limit - new_limit) / 1024 * hours * per_month
    dollars = dollars_for(platform, saved)
    money = f", about ${dollars:.2f}/month" if dollars is not None else ""
    return Finding(
        kind=InsightKind.COST,
        rule="memory_overprovisioned",
        job_id=job_id,
        title=f"{job_id}: peak memory at most {max(peaks):.0f} MiB of a {limit} MiB limit in "
        f"the last {len(samples)} runs",
        evidence=Evidence(
            metric="peak_rss_mb",
            unit="MiB",
            points=job_points(
                samples, [round(p, 1) for p in peaks], [j.memory_limit_mb for _, j in samples]
            ),
            summary={
                "limit": limit,
                "max_peak": round(max(peaks), 1),
                "platform": platform,
                "runs_per_month": round(per_month, 1),
            },
        ),
        suggestion=config_change(history.pipeline_id, "memory_mb", limit, new_limit, job_id=job_id),
        estimated_effect=EstimatedEffect(
            summary=f"reserve {new_limit} MiB instead of {limit}: {saved:.3f} GiB-hours/month "
            f"less at {per_month:.0f} runs/month{money}",
            metric="reserved_gib_hours_per_month",
            amount=round(saved, 4),
            unit="GiB-hours/month",
        ),
        fit=max(0.0, 1.0 - spread(peaks)),
        fit_method=f"1 - variation of peak memory over {len(samples)} runs",
        runs=len(samples),
        baseline={"limit": float(limit), "max_peak": round(max(peaks), 1)},
    )


def cost_findings(history: History) -> list[Finding]:
    """Every cost finding for the pipeline's current jobs."""
    found = [_over_provisioned(history, job.job_id) for job in history.pipeline.jobs]
    return [f for f in found if f is not None]


class JobCost(BaseModel):
    """One job's memory bill at the observed frequency."""

    job_id: str = Field(description="Job.")
    platform: str = Field(description="local, fargate or lambda.")
    runs: int = Field(description="Runs of the job in the window.")
    reserved_gib_hours_per_month: float = Field(description="Limit x duration, per month.")
    used_gib_hours_per_month: float = Field(description="Peak x duration, per month.")
    utilisation: float | None = Field(description="Used over reserved.")
    dollars_per_month: float | None = Field(description="Priced memory (AWS); null on local.")
    right_size_saving_gib_hours: float = Field(description="What the cost insight would save.")


class PipelineCost(BaseModel):
    """A pipeline's memory cost, job by job, with the prices it used."""

    pipeline_id: str = Field(description="Pipeline.")
    runs: int = Field(description="Finished runs in the window.")
    runs_per_month: float = Field(description="Observed frequency, scaled to 30 days.")
    jobs: list[JobCost] = Field(description="Per job.")
    reserved_gib_hours_per_month: float = Field(description="Sum over jobs.")
    used_gib_hours_per_month: float = Field(description="Sum over jobs.")
    dollars_per_month: float | None = Field(description="Sum of the AWS-priced jobs; null: none.")
    right_size_saving_gib_hours: float = Field(description="Sum of the cost insights' savings.")
    prices: PriceTable = Field(description="Price table used: date, region, currency.")


def _mean(samples: list[JobSample], attribute: str) -> float:
    return sum(getattr(j, attribute) for j in samples) / len(samples) if samples else 0.0


def pipeline_cost(history: History) -> PipelineCost:
    """Reserved vs used GiB-hours per job per month, priced where the job runs on AWS."""
    per_month = runs_per_month(history.runs)
    savings = {f.job_id: f.estimated_effect.amount or 0.0 for f in cost_findings(history)}
    jobs = []
    for job in history.pipeline.jobs:
        samples = [j for _, j in history.job_samples(job.job_id)]
        reserved = _mean(samples, "reserved_gib_hours") * per_month
        used = _mean(samples, "used_gib_hours") * per_month
        platform = platform_of(history, job.job_id)
        dollars = dollars_for(platform, reserved)
        jobs.append(
            JobCost(
                job_id=job.job_id,
                platform=platform,
                runs=len(samples),
                reserved_gib_hours_per_month=round(reserved, 4),
                used_gib_hours_per_month=round(used, 4),
                utilisation=round(used / reserved, 3) if reserved else None,
                dollars_per_month=None if dollars is None else round(dollars, 2),
                right_size_saving_gib_hours=round(savings.get(job.job_id, 0.0), 4),
            )
        )
    priced = [j.dollars_per_month for j in jobs if j.dollars_per_month is not None]
    return PipelineCost(
        pipeline_id=history.pipeline_id,
        runs=len(history.runs),
        runs_per_month=round(per_month, 1),
        jobs=jobs,
        reserved_gib_hours_per_month=round(sum(j.reserved_gib_hours_per_month for j in jobs), 4),
        used_gib_hours_per_month=round(sum(j.used_gib_hours_per_month for j in jobs), 4),
        dollars_per_month=round(sum(priced), 2) if priced else None,
        right_size_saving_gib_hours=round(sum(j.right_size_saving_gib_hours for j in jobs), 4),
        prices=price_table(),
    )
