"""Preventive insights: fix a job before it fails.

Memory or duration creeping towards the limit (now, or by a fitted trend within a few
runs), a job that needs retries in a growing share of runs or fails with the same error
again and again, and a pipeline that has not succeeded since its latest version.
"""

from __future__ import annotations

from collections import Counter

from bunsui_core.insights._numbers import fit_trend, round_up
from bunsui_core.insights.history import History, JobSample, RunSample
from bunsui_core.insights.model import (
    EstimatedEffect,
    Evidence,
    Finding,
    InsightKind,
    Suggestion,
    command,
    config_change,
    job_points,
    run_points,
)
from bunsui_core.model.session import RunStatus

NEAR_LIMIT = 0.8
"""Peak (or longest attempt) at this share of its limit is too close for comfort."""
HORIZON_RUNS = 5
"""A fitted trend that crosses the limit within this many runs is worth acting on now."""
TREND_MIN_R2 = 0.5
"""Below this the runs do not follow a line well enough to extrapolate."""
TREND_RUNS = 10
"""Runs the trend is fitted over: recent behaviour, not last month's."""
MEMORY_HEADROOM = 1.25
TIMEOUT_HEADROOM = 1.5
FLAKY_SHARE = 0.3
"""A job that needs retries in this share of recent runs is flaky."""
RECURRING_RUNS = 3
"""The same error fingerprint in this many runs is a recurring failure, not bad luck."""


def _measured(
    history: History, job_id: str, *, memory: bool
) -> tuple[list[tuple[RunSample, JobSample]], list[float], list[float]] | None:
    """Runs of the job with both a measurement and a limit, for the memory or timeout rule."""
    pairs = []
    for run, job in history.job_samples(job_id):
        value, limit = (
            (job.peak_rss_mb, job.memory_limit_mb)
            if memory
            else (job.longest_attempt_seconds, job.timeout_seconds)
        )
        if value is not None and limit:
            pairs.append(((run, job), float(value), float(limit)))
    if not pairs:
        return None
    return [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]


def _limit_rule(history: History, job_id: str, *, measure: str) -> Finding | None:
    """Memory or duration at >= NEAR_LIMIT of its limit, or trending there within HORIZON."""
    memory = measure == "memory"
    metric, unit = ("peak_rss_mb", "MiB") if memory else ("longest_attempt_seconds", "seconds")
    found = _measured(history, job_id, memory=memory)
    if found is None:
        return None
    samples, values, limits = found
    limit = limits[-1]
    recent = [v for v, lim in zip(values, limits, strict=True) if lim == limit][-TREND_RUNS:]
    ratio = values[-1] / limit
    trend = fit_trend(recent)
    crossing = None
    if trend is not None and trend.r_squared >= TREND_MIN_R2:
        crossing = trend.runs_until(limit)
    trending = crossing is not None and crossing <= HORIZON_RUNS
    if ratio < NEAR_LIMIT and not trending:
        return None
    projected = max(values[-1], *recent)
    if trending and trend is not None:
        projected = max(projected, trend.at(trend.runs - 1 + HORIZON_RUNS))
    headroom = MEMORY_HEADROOM if memory else TIMEOUT_HEADROOM
    new_limit = round_up(projected * headroom, 64 if memory else 10)
    if new_limit <= limit:
        return None
    if trending and trend is not None:
        fit, method = trend.r_squared, f"r² of a linear trend over {trend.runs} runs"
    else:
        near = [v / lim >= NEAR_LIMIT for v, lim in zip(values, limits, strict=True)][-5:]
        fit, method = sum(near) / len(near), f"share of the last {len(near)} runs at >= 80%"
    what = "peak memory" if memory else "the longest attempt"
    when = (
        f"the trend crosses the limit in {crossing} run(s)"
        if trending
        else f"the last run used {ratio:.0%} of it"
    )
    return Finding(
        kind=InsightKind.PREVENTIVE,
        rule="memory_near_limit" if memory else "duration_near_timeout",
        job_id=job_id,
        title=f"{job_id}: {what} is approaching its limit of {limit:g} {unit} ({when})",
        evidence=Evidence(
            metric=metric,
            unit=unit,
            points=job_points(samples, values, limits),
            summary={
                "limit": limit,
                "last_ratio": round(ratio, 3),
                "trend_slope_per_run": round(trend.slope, 3) if trend else None,
                "trend_r_squared": round(trend.r_squared, 3) if trend else None,
                "runs_until_limit": crossing,
                "projected": round(projected, 1),
            },
        ),
        suggestion=config_change(
            history.pipeline_id,
            "memory_mb" if memory else "timeout_seconds",
            int(limit),
            new_limit,
            job_id=job_id,
        ),
        estimated_effect=EstimatedEffect(
            summary=f"raise the limit to {new_limit} {unit}: the projected {projected:.0f} "
            f"{unit} then uses {projected / new_limit:.0%} of it",
            metric=f"{metric}_ratio",
            amount=round(projected / new_limit, 3),
            unit="share of limit",
        ),
        fit=fit,
        fit_method=method,
        runs=len(recent),
        baseline={"ratio": round(ratio, 3), "limit": limit},
    )


def _flaky(history: History, job_id: str) -> Finding | None:
    """Succeeds only after retries in a growing (or steady, high) share of recent runs."""
    samples = [(r, j) for r, j in history.job_samples(job_id) if j.status is RunStatus.COMPLETED]
    if len(samples) < 4:
        return None
    retried = [j.attempts > 1 for _, j in samples]
    half = len(retried) // 2
    older, recent = retried[:half], retried[half:]
    older_share, recent_share = sum(older) / len(older), sum(recent) / len(recent)
    if recent_share < FLAKY_SHARE or recent_share < older_share:
        return None
    latest = next(r for (r, j) in reversed(samples) if j.attempts > 1)
    return Finding(
        kind=InsightKind.PREVENTIVE,
        rule="flaky_retries",
        job_id=job_id,
        title=f"{job_id}: needs retries to succeed in {recent_share:.0%} of recent runs "
        f"(was {older_share:.0%})",
        evidence=Evidence(
            metric="attempts",
            unit="attempts",
            points=job_points(samples, [float(j.attempts) for _, j in samples]),
            summary={"older_share": round(older_share, 3), "recent_share": round(recent_share, 3)},
        ),
        suggestion=Suggestion(
            action="job:logs",
            command=command("job", "logs", job_id, "--session-id", latest.session_id),
        ),
        estimated_effect=EstimatedEffect(
            summary="find why the first attempt fails before retries stop being enough",
            metric="retried_share",
            amount=round(recent_share, 3),
            unit="share of runs",
        ),
        fit=min(1.0, recent_share + (recent_share - older_share)),
        fit_method="recent retried share plus its growth over the older half",
        runs=len(samples),
        baseline={"retried_share": round(recent_share, 3)},
    )


def _recurring(history: History, job_id: str) -> Finding | None:
    """The same error fingerprint in several runs: a failure that keeps coming back."""
    samples = history.job_samples(job_id)
    counts = Counter(f for _, j in samples for f in j.fingerprints)
    if not counts:
        return None
    fingerprint, runs = counts.most_common(1)[0]
    if runs < RECURRING_RUNS:
        return None
    latest = next(r for r, j in reversed(samples) if fingerprint in j.fingerprints)
    with_it = [1.0 if fingerprint in j.fingerprints else 0.0 for _, j in samples]
    return Finding(
        kind=InsightKind.PREVENTIVE,
        rule="recurring_error",
        job_id=job_id,
        title=f"{job_id}: the same error (fingerprint {fingerprint[:12]}) in {runs} of the "
        f"last {len(samples)} runs",
        evidence=Evidence(
            metric="error_seen",
            unit="1 = the fingerprint occurred",
            points=job_points(samples, with_it),
            summary={"fingerprint": fingerprint, "runs_with_error": runs},
        ),
        suggestion=Suggestion(
            action="error:analyze",
            command=command("error", "analyze", "--session-id", latest.session_id),
        ),
        estimated_effect=EstimatedEffect(
            summary="diagnose the recurring error once instead of retrying it every run",
            metric="runs_with_error",
            amount=float(runs),
            unit="runs",
        ),
        fit=runs / len(samples),
        fit_method="share of runs with this fingerprint",
        runs=len(samples),
        baseline={"error_share": round(runs / len(samples), 3)},
    )


def _failing_since_version(history: History) -> Finding | None:
    """Every run of the latest version failed while an earlier version succeeded."""
    latest = [r for r in history.runs if r.pipeline_version == history.version]
    good = [
        r for r in history.runs if r.pipeline_version < history.version and r.status == "completed"
    ]
    if len(latest) < 2 or not good or any(r.status == "completed" for r in latest):
        return None
    good_version = good[-1].pipeline_version
    shown = [r for r in history.runs if r.pipeline_version in {good_version, history.version}]
    return Finding(
        kind=InsightKind.PREVENTIVE,
        rule="failing_since_version",
        job_id=None,
        title=f"no run has succeeded since version {history.version} ({len(latest)} failed); "
        f"version {good_version} did",
        evidence=Evidence(
            metric="succeeded",
            unit="1 = completed",
            points=run_points(shown, [1.0 if r.status == "completed" else 0.0 for r in shown]),
            summary={"failed_since": len(latest), "last_good_version": good_version},
        ),
        suggestion=config_change(
            history.pipeline_id, "version", history.version, good_version, job_id=None
        ),
        estimated_effect=EstimatedEffect(
            summary=f"runs succeed again with version {good_version}'s definition",
            metric="success_share",
            amount=1.0,
            unit="share of runs",
        ),
        fit=len(latest) / (len(latest) + 1),
        fit_method="failed runs of the new version n/(n+1)",
        runs=len(latest),
        baseline={"success_share": 0.0},
    )


def preventive_findings(history: History) -> list[Finding]:
    """Every preventive finding for the pipeline's current jobs."""
    findings: list[Finding | None] = [_failing_since_version(history)]
    for job in history.pipeline.jobs:
        findings += [
            _limit_rule(history, job.job_id, measure="memory"),
            _limit_rule(history, job.job_id, measure="duration"),
            _flaky(history, job.job_id),
            _recurring(history, job.job_id),
        ]
    return [f for f in findings if f is not None]
