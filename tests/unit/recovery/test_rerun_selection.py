"""Which jobs a rerun executes: pure DAG logic, checked by examples and by property."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bunsui_core.model.dag import downstream_of
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import RunStatus
from bunsui_core.recovery.rerun import RerunStrategy, estimate_minutes, select_jobs
from tests.conftest import command_job, pipeline_data

# extract -> transform -> load, and an independent report job
PIPELINE = validate_pipeline_data(
    pipeline_data(
        command_job("extract", "pass"),
        command_job("transform", "pass", deps=["extract"]),
        command_job("load", "pass", deps=["transform"]),
        command_job("report", "pass", deps=["extract"]),
    )
)
FAILED_TRANSFORM = {
    "extract": RunStatus.COMPLETED,
    "transform": RunStatus.FAILED,
    "load": RunStatus.UPSTREAM_FAILED,
    "report": RunStatus.COMPLETED,
}


class TestStrategies:
    def test_checkpoint_skips_what_succeeded(self):
        """Checkpoint reruns the failure and its downstream; succeeded jobs are skipped."""
        chosen = select_jobs(PIPELINE, FAILED_TRANSFORM, RerunStrategy.CHECKPOINT, set())
        assert chosen.jobs_to_run == ["transform", "load"]
        assert chosen.skipped_jobs == ["extract", "report"]

    def test_checkpoint_from_job_reruns_everything_downstream(self):
        """From a succeeded job, that job and everything downstream rerun."""
        chosen = select_jobs(PIPELINE, FAILED_TRANSFORM, RerunStrategy.CHECKPOINT, {"extract"})
        assert set(chosen.jobs_to_run) == {"extract", "transform", "load", "report"}
        assert chosen.skipped_jobs == []

    def test_failed_only_ignores_from_job(self):
        """failed-only reruns exactly what did not succeed (and its downstream)."""
        chosen = select_jobs(PIPELINE, FAILED_TRANSFORM, RerunStrategy.FAILED_ONLY, {"extract"})
        assert chosen.jobs_to_run == ["transform", "load"]

    def test_full_reruns_everything(self):
        """full skips nothing."""
        chosen = select_jobs(PIPELINE, FAILED_TRANSFORM, RerunStrategy.FULL, set())
        assert chosen.skipped_jobs == []

    def test_skipped_in_an_earlier_rerun_counts_as_succeeded(self):
        """A job skipped by a previous rerun (outputs reused) is skipped again."""
        statuses = {**FAILED_TRANSFORM, "extract": RunStatus.SKIPPED}
        chosen = select_jobs(PIPELINE, statuses, RerunStrategy.CHECKPOINT, set())
        assert "extract" in chosen.skipped_jobs


class TestEstimate:
    def test_critical_path_of_recorded_durations(self):
        """The estimate is the longest dependency chain of the jobs to run."""
        minutes = estimate_minutes(
            PIPELINE, ["transform", "load"], {"transform": 120.0, "load": 60.0}
        )
        assert minutes == 3.0

    def test_unknown_duration_is_null(self):
        """A job with no recorded duration makes the estimate unknown, not zero."""
        assert estimate_minutes(PIPELINE, ["transform", "load"], {"transform": 120.0}) is None


@st.composite
def dags_with_outcomes(draw: st.DrawFn):
    size = draw(st.integers(min_value=1, max_value=8))
    jobs = []
    for index in range(size):
        deps = (
            draw(st.sets(st.integers(min_value=0, max_value=index - 1), max_size=3))
            if index
            else set()
        )
        jobs.append(command_job(f"j{index}", "pass", deps=[f"j{d}" for d in sorted(deps)]))
    statuses = {f"j{i}": draw(st.sampled_from(list(RunStatus))) for i in range(size)}
    from_jobs = draw(st.sets(st.sampled_from([f"j{i}" for i in range(size)]), max_size=2))
    strategy = draw(st.sampled_from(list(RerunStrategy)))
    return validate_pipeline_data(pipeline_data(*jobs)), statuses, strategy, from_jobs


class TestRerunProperties:
    @settings(max_examples=300, deadline=None)
    @given(dags_with_outcomes())
    def test_rerun_contract(self, case):
        """Skipped jobs succeeded before and never run; everything downstream of a rerun job
        reruns; every job that did not succeed reruns."""
        pipeline, statuses, strategy, from_jobs = case
        chosen = select_jobs(pipeline, statuses, strategy, from_jobs)
        edges = {j.job_id: j.dependencies for j in pipeline.jobs}
        to_run, skipped = set(chosen.jobs_to_run), set(chosen.skipped_jobs)
        assert not to_run & skipped
        assert to_run | skipped == set(edges)
        assert all(statuses[j] in {RunStatus.COMPLETED, RunStatus.SKIPPED} for j in skipped)
        assert downstream_of(edges, to_run) <= to_run
        if strategy is RerunStrategy.CHECKPOINT:
            assert from_jobs <= to_run
