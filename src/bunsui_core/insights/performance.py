"""Performance insights: which jobs bound the wall time and what would finish sooner.

Durations are the median of each job's recent successful runs; the critical path and the
effect of `max_concurrent_jobs` come from replaying the DAG with those durations, the way
the local engine schedules it (ready jobs in dependency order, at most N at a time).
"""

from __future__ import annotations

import heapq

from bunsui_core.insights._numbers import percentile, round_up
from bunsui_core.insights.history import History
from bunsui_core.insights.model import (
    EstimatedEffect,
    Evidence,
    EvidencePoint,
    Finding,
    InsightKind,
    Suggestion,
    command,
    config_change,
    job_points,
    run_points,
)
from bunsui_core.model.dag import topological_order
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import RunStatus

BOUND_SHARE = 0.5
"""A job holding half the critical path bounds the wall time."""
MIN_SAVING_SECONDS = 1.0
MIN_SAVING_SHARE = 0.1
"""A change must save at least a second and a tenth of the wall time to be suggested."""
RETRY_WAIT_SHARE = 0.5
"""Waiting between attempts for half a job's time is the wait, not the work."""
SLOWER_FACTOR = 1.5
"""Recent median this much above the job's own baseline is a regression."""
RECENT_RUNS = 3
BASELINE_RUNS = 10


def job_durations(history: History) -> dict[str, float]:
    """Median wall seconds of each job over its successful runs in the window."""
    durations: dict[str, float] = {}
    for job in history.pipeline.jobs:
        walls = [
            j.wall_seconds
            for _, j in history.job_samples(job.job_id)
            if j.status is RunStatus.COMPLETED and j.wall_seconds is not None
        ]
        median = percentile(walls, 0.5)
        if median is not None:
            durations[job.job_id] = median
    return durations


def _edges(pipeline: Pipeline) -> dict[str, list[str]]:
    return {j.job_id: list(j.dependencies) for j in pipeline.jobs}


def critical_path(pipeline: Pipeline, durations: dict[str, float]) -> tuple[list[str], float]:
    """The longest chain of dependent jobs by duration, and its length (none without runs)."""
    if not durations:
        return [], 0.0
    edges = _edges(pipeline)
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for job_id in topological_order(edges):
        before = max(edges[job_id], key=lambda d: finish[d], default=None)
        finish[job_id] = (finish[before] if before else 0.0) + durations.get(job_id, 0.0)
        via[job_id] = before
    end: str | None = max(finish, key=lambda j: finish[j])
    length = finish[end] if end else 0.0
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return list(reversed(path)), length


def makespan(pipeline: Pipeline, durations: dict[str, float], slots: int) -> float:
    """Wall time of one run when at most `slots` jobs run at once (list scheduling)."""
    edges = _edges(pipeline)
    order = {job_id: i for i, job_id in enumerate(topological_order(edges))}
    waiting = {j: set(deps) for j, deps in edges.items()}
    ready = sorted((j for j, deps in waiting.items() if not deps), key=order.__getitem__)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < slots:
            job_id = ready.pop(0)
            heapq.heappush(running, (now + durations.get(job_id, 0.0), job_id))
        now, done = heapq.heappop(running)
        for job_id, deps in waiting.items():
            if done in deps:
                deps.discard(done)
                if not deps:
                    ready.append(job_id)
        ready.sort(key=order.__getitem__)
    return now


def _wall_points(history: History) -> list[EvidencePoint]:
    return run_points(history.runs, [r.wall_seconds for r in history.runs])


def _stats_command(history: History) -> Suggestion:
    return Suggestion(
        action="pipeline:stats", command=command("pipeline", "stats", history.pipeline_id)
    )


def _bounding_job(history: History, durations: dict[str, float]) -> Finding | None:
    """One job holds most of the critical path: speeding it up is what shortens runs."""
    if len(history.pipeline.jobs) < 2 or len(durations) < 2:
        return None
    path, length = critical_path(history.pipeline, durations)
    if len(path) < 2:
        return None  # independent jobs: the concurrency rule is the one that applies
    job_id = max(path, key=lambda j: durations.get(j, 0.0))
    share = durations.get(job_id, 0.0) / length
    _, without = critical_path(history.pipeline, {**durations, job_id: 0.0})
    if share < BOUND_SHARE or length - without < max(MIN_SAVING_SECONDS, MIN_SAVING_SHARE * length):
        return None
    runs = len(history.job_samples(job_id))
    return Finding(
        kind=InsightKind.PERFORMANCE,
        rule="critical_path",
        job_id=job_id,
        title=f"{job_id} bounds the wall time: {durations[job_id]:.1f} s of the "
        f"{length:.1f} s critical path ({share:.0%})",
        evidence=Evidence(
            metric="wall_seconds",
            unit="seconds",
            points=_wall_points(history),
            summary={
                "critical_path": " -> ".join(path),
                "critical_path_seconds": round(length, 3),
                "job_median_seconds": round(durations[job_id], 3),
                "next_path_seconds": round(without, 3),
            },
        ),
        suggestion=_stats_command(history),
        estimated_effect=EstimatedEffect(
            summary=f"every second cut from {job_id} shortens runs, up to "
            f"{length - without:.1f} s before another path binds",
            metric="wall_seconds_per_run",
            amount=round(length - without, 3),
            unit="seconds saved at most",
        ),
        fit=share,
        fit_method="the job's share of the critical path",
        runs=runs,
        baseline={"wall_seconds": round(length, 3)},
    )


def _serialised(history: History, durations: dict[str, float]) -> Finding | None:
    """Independent jobs waiting for a slot: a higher max_concurrent_jobs finishes sooner."""
    pipeline = history.pipeline
    slots = pipeline.max_concurrent_jobs
    if len(durations) < len(pipeline.jobs) or slots >= len(pipeline.jobs):
        return None
    now = makespan(pipeline, durations, slots)
    best = makespan(pipeline, durations, len(pipeline.jobs))
    saved = now - best
    if saved < max(MIN_SAVING_SECONDS, MIN_SAVING_SHARE * now):
        return None
    wanted = next(
        n
        for n in range(slots + 1, len(pipeline.jobs) + 1)
        if makespan(pipeline, durations, n) <= best + 1e-9
    )
    walls = [r.wall_seconds for r in history.runs if r.wall_seconds is not None]
    observed = percentile(walls, 0.5)
    fit = 0.5 if not observed else max(0.0, 1.0 - abs(now - observed) / observed)
    return Finding(
        kind=InsightKind.PERFORMANCE,
        rule="serialised_by_concurrency",
        job_id=None,
        title=f"independent jobs wait for a slot: max_concurrent_jobs {slots} -> {wanted} "
        f"would cut a run from {now:.1f} s to {best:.1f} s",
        evidence=Evidence(
            metric="wall_seconds",
            unit="seconds",
            points=_wall_points(history),
            summary={
                "max_concurrent_jobs": slots,
                "replayed_seconds": round(now, 3),
                "replayed_with_more_slots": round(best, 3),
                "observed_median_seconds": None if observed is None else round(observed, 3),
            },
        ),
        suggestion=config_change(
            history.pipeline_id, "max_concurrent_jobs", slots, wanted, job_id=None
        ),
        estimated_effect=EstimatedEffect(
            summary=f"about {saved:.1f} s less per run",
            metric="wall_seconds_per_run",
            amount=round(saved, 3),
            unit="seconds saved",
        ),
        fit=fit,
        fit_method="agreement of the replayed schedule with the observed median wall time",
        runs=len(walls),
        baseline={"wall_seconds": round(observed if observed is not None else now, 3)},
    )


def _retry_waits(history: History, job_id: str) -> Finding | None:
    """Most of the job's time is spent waiting between attempts, not running them."""
    samples = [(r, j) for r, j in history.job_samples(job_id) if j.attempts > 1 and j.wall_seconds]
    dominated = [
        (r, j)
        for r, j in samples
        if j.retry_wait_seconds / (j.wall_seconds or 1) >= RETRY_WAIT_SHARE
    ]
    if len(dominated) < 2 or len(dominated) * 2 < len(samples):
        return None
    policies = [
        op.config.retry for op in history.pipeline.job(job_id).operations if op.config.retry
    ]
    if not policies:
        return None
    interval = max(p.interval_seconds for p in policies)
    wanted = max(1, round_up(interval / 4, 1))
    if wanted >= interval:
        return None
    wait = sum(j.retry_wait_seconds for _, j in dominated) / len(dominated)
    saved = wait * (1 - wanted / interval)
    return Finding(
        kind=InsightKind.PERFORMANCE,
        rule="retry_waits_dominate",
        job_id=job_id,
        title=f"{job_id}: waits between retries take {wait:.1f} s of its runs "
        f"({len(dominated)} of {len(samples)} retried runs mostly waiting)",
        evidence=Evidence(
            metric="retry_wait_seconds",
            unit="seconds",
            points=job_points(
                samples,
                [j.retry_wait_seconds for _, j in samples],
                [j.wall_seconds for _, j in samples],
            ),
            summary={"retry_interval_seconds": interval, "mean_wait_seconds": round(wait, 3)},
        ),
        suggestion=config_change(
            history.pipeline_id, "retry_interval_seconds", interval, wanted, job_id=job_id
        ),
        estimated_effect=EstimatedEffect(
            summary=f"about {saved:.1f} s less per retried run; the retries themselves stay",
            metric="retry_wait_seconds",
            amount=round(saved, 3),
            unit="seconds saved per retried run",
        ),
        fit=len(dominated) / len(samples),
        fit_method="share of retried runs dominated by waiting",
        runs=len(samples),
        baseline={"retry_wait_seconds": round(wait, 3)},
    )


def _slower(history: History, job_id: str) -> Finding | None:
    """The job's recent runs are much slower than its own earlier runs."""
    samples = [
        (r, j)
        for r, j in history.job_samples(job_id)
        if j.status is RunStatus.COMPLETED and j.wall_seconds is not None
    ]
    if len(samples) < RECENT_RUNS * 2:
        return None
    recent = samples[-RECENT_RUNS:]
    base = samples[:-RECENT_RUNS][-BASELINE_RUNS:]
    recent_median = percentile([j.wall_seconds or 0.0 for _, j in recent], 0.5) or 0.0
    base_median = percentile([j.wall_seconds or 0.0 for _, j in base], 0.5) or 0.0
    if (
        recent_median < base_median * SLOWER_FACTOR
        or recent_median - base_median < MIN_SAVING_SECONDS
    ):
        return None
    base_version = base[-1][0].pipeline_version
    changed = recent[0][0].pipeline_version != base_version
    since = f" since version {recent[0][0].pipeline_version}" if changed else ""
    suggestion = (
        config_change(history.pipeline_id, "version", history.version, base_version, job_id=None)
        if changed and history.version != base_version
        else _stats_command(history)
    )
    slowest_base = max(j.wall_seconds or 0.0 for _, j in base)
    fit = 1.0 if min(j.wall_seconds or 0.0 for _, j in recent) > slowest_base else 0.6
    return Finding(
        kind=InsightKind.PERFORMANCE,
        rule="slower_than_baseline",
        job_id=job_id,
        title=f"{job_id}: {recent_median:.1f} s per run{since}, its baseline is "
        f"{base_median:.1f} s ({recent_median / base_median:.1f}x)",
        evidence=Evidence(
            metric="wall_seconds",
            unit="seconds",
            points=job_points(samples, [j.wall_seconds for _, j in samples]),
            summary={
                "baseline_median_seconds": round(base_median, 3),
                "recent_median_seconds": round(recent_median, 3),
                "baseline_version": base_version,
            },
        ),
        suggestion=suggestion,
        estimated_effect=EstimatedEffect(
            summary=f"back to the baseline saves about {recent_median - base_median:.1f} s per run",
            metric="job_wall_seconds",
            amount=round(recent_median - base_median, 3),
            unit="seconds saved per run",
        ),
        fit=fit,
        fit_method="1.0 when every recent run is slower than the slowest baseline run, else 0.6",
        runs=len(samples),
        baseline={"job_wall_seconds": round(recent_median, 3)},
    )


def performance_findings(history: History) -> list[Finding]:
    """Every performance finding for the pipeline's current definition."""
    durations = job_durations(history)
    found = [_bounding_job(history, durations), _serialised(history, durations)]
    for job in history.pipeline.jobs:
        found += [_retry_waits(history, job.job_id), _slower(history, job.job_id)]
    return [f for f in found if f is not None]
