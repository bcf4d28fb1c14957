"""Each insight rule against a generated history written straight into a SQLite store."""

from __future__ import annotations

import pytest

from bunsui_core.insights.cost import pipeline_cost
from bunsui_core.insights.history import load_history
from bunsui_core.insights.model import Insight, InsightKind, insight_id_for, pipeline_of
from bunsui_core.insights.review import pipeline_insights
from bunsui_core.model.session import RunStatus
from tests.unit.insights.recorded import Ran, Recorder, job, recorded_chain


def insights_of(store, pipeline_id: str) -> dict[str, Insight]:
    history = load_history(store, pipeline_id)
    return {i.rule: i for i in pipeline_insights(store, history)}


class TestPreventive:
    def test_memory_trend_crossing_the_limit_is_sized_from_the_trend(self, store):
        """Peaks growing 40 MiB a run cross 512 MiB within five runs: raise the limit to the
        peak projected five runs ahead plus 25%, before any run fails."""
        rec = Recorder(store, "grow", job("load", memory=512))
        for peak in (200, 240, 280, 320, 360):
            rec.run(load=Ran(peak=peak, limit=512))
        found = insights_of(store, "grow")["memory_near_limit"]
        assert found.kind is InsightKind.PREVENTIVE
        assert found.evidence.summary["runs_until_limit"] == 4
        assert found.evidence.summary["trend_r_squared"] == 1.0
        # projected 360 + 5 * 40 = 560 MiB, x1.25 = 700, rounded up to 64 MiB
        assert found.suggestion.change == {"memory_mb": {"before": 512, "after": 704}}
        assert found.suggestion.command == (
            "bunsui pipeline update-config grow --job load --memory 704"
        )
        assert [p.value for p in found.evidence.points] == [200, 240, 280, 320, 360]
        assert found.confidence_basis.fit_method.startswith("r² of a linear trend")

    def test_peak_at_eighty_percent_without_a_trend(self, store):
        """A flat peak at 88% of the limit is flagged from the ratio alone."""
        rec = Recorder(store, "flat", job("load", memory=512))
        for _ in range(4):
            rec.run(load=Ran(peak=450, limit=512))
        found = insights_of(store, "flat")["memory_near_limit"]
        assert found.evidence.summary["last_ratio"] == pytest.approx(450 / 512, abs=1e-3)
        assert found.suggestion.change["memory_mb"]["after"] == 576  # 450 x 1.25 -> 64 MiB
        assert found.confidence_basis.fit == 1.0

    def test_comfortable_memory_is_not_flagged(self, store):
        """Peaks well under the limit with noise and no trend give no preventive insight."""
        rec = Recorder(store, "calm", job("load", memory=512))
        for peak in (300, 280, 310, 290, 300):
            rec.run(load=Ran(peak=peak, limit=512))
        assert "memory_near_limit" not in insights_of(store, "calm")

    def test_duration_near_timeout(self, store):
        """The longest attempt at 92% of its timeout, no trend: raise the timeout by half."""
        rec = Recorder(store, "slow", job("load", timeout_seconds=60))
        for elapsed in (55, 54, 55):
            rec.run(load=Ran(elapsed=elapsed, timeout=60, peak=None, limit=None))
        found = insights_of(store, "slow")["duration_near_timeout"]
        assert found.suggestion.change == {"timeout_seconds": {"before": 60, "after": 90}}
        assert "--timeout 90" in found.suggestion.command

    def test_duration_trend_sizes_the_timeout_ahead(self, store):
        """Attempts growing 2.5 s a run reach the 60 s timeout soon: size from the trend
        (55 + 5 x 2.5 projected, x1.5, in 10 s steps)."""
        rec = Recorder(store, "creep", job("load", timeout_seconds=60))
        for elapsed in (45, 47.5, 50, 52.5, 55):
            rec.run(load=Ran(elapsed=elapsed, timeout=60, peak=None, limit=None))
        found = insights_of(store, "creep")["duration_near_timeout"]
        assert found.evidence.summary["runs_until_limit"] == 2
        assert found.suggestion.change == {"timeout_seconds": {"before": 60, "after": 110}}

    def test_flaky_job_needing_retries_in_a_growing_share(self, store):
        """Retries in none of the older runs and most recent ones: a flaky job."""
        rec = Recorder(store, "flaky", job("call"))
        for attempts in (1, 1, 1, 1, 2, 1, 2, 3):
            rec.run(call=Ran(attempts=attempts))
        found = insights_of(store, "flaky")["flaky_retries"]
        assert found.evidence.summary == {"older_share": 0.0, "recent_share": 0.75}
        assert found.suggestion.action == "job:logs"
        assert found.suggestion.command.endswith("--session-id ses-flaky-00008")

    def test_recurring_error_fingerprint(self, store):
        """The same error in three runs (numbers differ, fingerprint does not) recurs."""
        rec = Recorder(store, "recur", job("call"))
        for n in range(4):
            rec.run(call=Ran(attempts=2, error=f"connection reset by peer after {n}ms"))
        found = insights_of(store, "recur")["recurring_error"]
        assert found.evidence.summary["runs_with_error"] == 4
        assert found.suggestion.command == "bunsui error analyze --session-id ses-recur-00004"

    def test_no_success_since_a_version_change(self, store):
        """Version 2 failed every run while version 1 succeeded: suggest reverting to 1."""
        rec = Recorder(store, "broke", job("load"))
        for _ in range(3):
            rec.run(load=Ran())
        assert rec.register(job("load", timeout_seconds=5)) == 2
        for _ in range(2):
            rec.run(load=Ran(status=RunStatus.FAILED))
        found = insights_of(store, "broke")["failing_since_version"]
        assert found.job_id is None
        assert found.suggestion.command == "bunsui pipeline update-config broke --revert-to 1"
        assert found.evidence.summary == {"failed_since": 2, "last_good_version": 1}


class TestCost:
    def test_memory_overprovisioned_is_right_sized(self, store):
        """Five runs peaking at 40 MiB of 1024: right-size to peak + 30% (64 MiB steps)."""
        rec = Recorder(store, "fat", job("small", memory=1024))
        for _ in range(5):
            rec.run(small=Ran(peak=40, limit=1024, elapsed=3600))
        found = insights_of(store, "fat")["memory_overprovisioned"]
        assert found.kind is InsightKind.COST
        assert found.suggestion.change == {"memory_mb": {"before": 1024, "after": 64}}
        # one run a day: 30/month x 1 hour x (1024-64)/1024 GiB
        assert found.estimated_effect.amount == pytest.approx(30 * 960 / 1024, rel=1e-3)
        assert found.estimated_effect.unit == "GiB-hours/month"
        assert "$" not in found.estimated_effect.summary  # local engine: nothing is billed

    def test_aws_jobs_are_priced_with_the_shipped_table(self, store):
        """A Fargate job's saving is also in dollars, at the table's GB-hour price."""
        ecs = job("small", op_type="ecs", memory=1024, resource_arn="arn:aws:ecs:task/x")
        rec = Recorder(store, "ecs", ecs)
        for _ in range(5):
            rec.run(small=Ran(peak=40, limit=1024, elapsed=3600))
        found = insights_of(store, "ecs")["memory_overprovisioned"]
        assert found.evidence.summary["platform"] == "fargate"
        dollars = 30 * 960 / 1024 * 0.004445
        assert f"${dollars:.2f}/month" in found.estimated_effect.summary

    def test_pipeline_cost_prices_lambda_per_gb_second(self, store):
        """A Lambda job's reserved memory is priced per GB-second; local jobs are not priced."""
        fn = job("score", op_type="lambda", memory=2048, resource_arn="arn:aws:lambda:fn")
        rec = Recorder(store, "mixed", fn, job("local", memory=512))
        for _ in range(4):
            rec.run(score=Ran(peak=1800, limit=2048, elapsed=600), local=Ran(limit=512))
        cost = pipeline_cost(load_history(store, "mixed"))
        score, local = cost.jobs
        assert (score.platform, local.platform) == ("lambda", "local")
        # 30 runs/month x 600 s x 2 GiB = 36,000 GB-seconds
        assert score.dollars_per_month == pytest.approx(0.60)
        assert local.dollars_per_month is None
        assert cost.dollars_per_month == score.dollars_per_month
        assert (cost.prices.region, cost.prices.as_of) == ("us-east-1", "2024-06-01")

    def test_one_busy_run_breaks_the_streak(self, store):
        """A recent run that used most of the limit means the limit is not too big."""
        rec = Recorder(store, "spiky", job("small", memory=1024))
        for peak in (40, 40, 900, 40, 40):
            rec.run(small=Ran(peak=peak, limit=1024))
        assert "memory_overprovisioned" not in insights_of(store, "spiky")


class TestPerformance:
    def test_independent_jobs_serialised_by_max_concurrent_jobs(self, store):
        """Three independent 10 s jobs at one slot take 30 s; three slots would take 10 s."""
        rec = Recorder(store, "serial", job("a"), job("b"), job("c"), max_concurrent_jobs=1)
        for _ in range(3):
            rec.run(a=Ran(start=0), b=Ran(start=10), c=Ran(start=20))
        found = insights_of(store, "serial")["serialised_by_concurrency"]
        assert found.suggestion.change == {"max_concurrent_jobs": {"before": 1, "after": 3}}
        assert found.estimated_effect.amount == pytest.approx(20.0)
        assert found.confidence_basis.fit == pytest.approx(1.0)

    def test_the_job_bounding_the_critical_path(self, store):
        """In extract(2 s) -> transform(20 s) -> load(2 s), transform bounds the wall time."""
        recorded_chain(store)
        found = insights_of(store, "chain")["critical_path"]
        assert found.job_id == "transform"
        assert found.evidence.summary["critical_path"] == "extract -> transform -> load"
        assert found.estimated_effect.amount == pytest.approx(20.0)

    def test_retry_waits_dominate(self, store):
        """1 s attempts with 30 s waits between them: the retry interval is the cost."""
        retry = {"max_attempts": 3, "interval_seconds": 30}
        rec = Recorder(store, "waits", job("call", retry=retry))
        for _ in range(3):
            rec.run(call=Ran(elapsed=1, attempts=3, wait=30))
        found = insights_of(store, "waits")["retry_waits_dominate"]
        assert found.suggestion.change == {"retry_interval_seconds": {"before": 30.0, "after": 8}}
        assert found.evidence.summary["mean_wait_seconds"] == pytest.approx(60.0)

    def test_slower_than_its_own_baseline_since_a_version(self, store):
        """10 s runs on version 1, 30 s since version 2: suggest going back to version 1."""
        rec = Recorder(store, "regress", job("t"))
        for _ in range(5):
            rec.run(t=Ran(elapsed=10))
        rec.register(job("t", timeout_seconds=600))
        for _ in range(3):
            rec.run(t=Ran(elapsed=30))
        found = insights_of(store, "regress")["slower_than_baseline"]
        assert found.suggestion.command == "bunsui pipeline update-config regress --revert-to 1"
        assert found.estimated_effect.amount == pytest.approx(20.0)
        assert found.confidence_basis.fit == 1.0


class TestIdentity:
    def test_ids_are_stable_and_name_their_pipeline(self, store):
        """Recomputing gives the same id; the id names the pipeline; kinds and jobs differ."""
        rec = Recorder(store, "nightly-etl", job("small", memory=1024))
        for _ in range(3):
            rec.run(small=Ran(peak=40, limit=1024))
        first = insights_of(store, "nightly-etl")["memory_overprovisioned"].insight_id
        rec.run(small=Ran(peak=41, limit=1024))
        assert insights_of(store, "nightly-etl")["memory_overprovisioned"].insight_id == first
        assert pipeline_of(first) == "nightly-etl"
        assert first == insight_id_for(
            "nightly-etl", "small", InsightKind.COST, "memory_overprovisioned"
        )
        assert pipeline_of("ses-1234") is None
        assert pipeline_of("ins-x") is None

    def test_too_few_runs_give_low_honest_confidence(self, store):
        """One run near the limit is flagged, but its confidence says it rests on one run."""
        rec = Recorder(store, "once", job("load", memory=512))
        rec.run(load=Ran(peak=500, limit=512))
        found = insights_of(store, "once")["memory_near_limit"]
        assert found.confidence_basis.runs == 1
        assert found.confidence == pytest.approx(1 / 3, abs=0.01)
