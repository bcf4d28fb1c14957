"""After `insight apply`: did the change do what it promised, judged on the runs since.

Each rule says which figure must improve; once OUTCOME_RUNS runs have finished after the
change, the verdict is fixed and recorded as a resolution outcome, so the rule's future
confidence learns from it the way recovery actions learn from reruns.
"""

from __future__ import annotations

from collections.abc import Callable

from bunsui_core.insights._numbers import percentile
from bunsui_core.insights.history import JobSample, RunSample
from bunsui_core.model.insight import InsightVerdict
from bunsui_core.model.session import RunStatus

OUTCOME_RUNS = 3
"""Finished runs after a change before it is judged."""
IMPROVEMENT = 0.95
"""A duration must drop below 95% of its baseline to count as faster."""
SAFE_RATIO = 0.9
"""After raising a limit, peaks must stay below this share of the new one."""


def rule_code(rule: str) -> str:
    """The error-code key a rule's outcomes are learned under (`INSIGHT_MEMORY_NEAR_LIMIT`)."""
    return f"INSIGHT_{rule.upper()}"


def _jobs(runs: list[RunSample], job_id: str | None) -> list[JobSample]:
    return [
        r.jobs[job_id]
        for r in runs
        if job_id is not None
        and job_id in r.jobs
        and r.jobs[job_id].status is not RunStatus.SKIPPED
    ]


def _all_completed(runs: list[RunSample], job_id: str | None, _: dict[str, float]) -> bool:
    jobs = _jobs(runs, job_id)
    return bool(jobs) and all(j.status is RunStatus.COMPLETED for j in jobs)


def _memory_safe(runs: list[RunSample], job_id: str | None, baseline: dict[str, float]) -> bool:
    jobs = _jobs(runs, job_id)
    return _all_completed(runs, job_id, baseline) and all(
        (j.memory_ratio or 0.0) < SAFE_RATIO for j in jobs
    )


def _retried_less(runs: list[RunSample], job_id: str | None, baseline: dict[str, float]) -> bool:
    jobs = _jobs(runs, job_id)
    share = sum(j.attempts > 1 for j in jobs) / len(jobs) if jobs else 1.0
    return share < baseline.get("retried_share", 0.0)


def _errors_less(runs: list[RunSample], job_id: str | None, baseline: dict[str, float]) -> bool:
    jobs = _jobs(runs, job_id)
    share = sum(bool(j.fingerprints) for j in jobs) / len(jobs) if jobs else 1.0
    return share < baseline.get("error_share", 0.0)


def _succeeded(runs: list[RunSample], _job_id: str | None, _: dict[str, float]) -> bool:
    return any(r.status == "completed" for r in runs)


def _faster(runs: list[RunSample], job_id: str | None, baseline: dict[str, float]) -> bool:
    if job_id is None or "wall_seconds" in baseline:
        walls = [r.wall_seconds for r in runs if r.wall_seconds is not None]
        before = baseline.get("wall_seconds", 0.0)
    else:
        walls = [j.wall_seconds for j in _jobs(runs, job_id) if j.wall_seconds is not None]
        before = baseline.get("job_wall_seconds", 0.0)
    median = percentile(walls, 0.5)
    return median is not None and median < before * IMPROVEMENT


def _waits_shorter(runs: list[RunSample], job_id: str | None, baseline: dict[str, float]) -> bool:
    waits = [j.retry_wait_seconds for j in _jobs(runs, job_id) if j.attempts > 1]
    if not waits:
        return _all_completed(runs, job_id, baseline)
    return sum(waits) / len(waits) < baseline.get("retry_wait_seconds", 0.0) * IMPROVEMENT


JUDGES: dict[str, Callable[[list[RunSample], str | None, dict[str, float]], bool]] = {
    "memory_near_limit": _memory_safe,
    "duration_near_timeout": _all_completed,
    "flaky_retries": _retried_less,
    "recurring_error": _errors_less,
    "failing_since_version": _succeeded,
    "memory_overprovisioned": _all_completed,
    "critical_path": _faster,
    "serialised_by_concurrency": _faster,
    "retry_waits_dominate": _waits_shorter,
    "slower_than_baseline": _faster,
}
"""Per rule: what the runs after the change must show for it to have helped."""


def judge(
    rule: str, job_id: str | None, baseline: dict[str, float], runs_after: list[RunSample]
) -> InsightVerdict | None:
    """helped / did_not_help once enough runs finished after the change; None before."""
    if len(runs_after) < OUTCOME_RUNS:
        return None
    helped = JUDGES[rule](runs_after, job_id, baseline)
    return InsightVerdict.HELPED if helped else InsightVerdict.DID_NOT_HELP
