"""Insight actions through the gateway: list filters, apply as an agent (a ticket) and as a
person (the pipeline changes), dismiss, the verdict after apply and what it teaches."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import pytest

from bunsui_core.actions import Gateway
from bunsui_core.errors import BunsuiError, ErrorCode
from bunsui_core.store.sqlite import SqliteStore
from tests.unit.insights.recorded import START, Ran, Recorder, job, recorded_chain

OS_USER = getpass.getuser()  # operator + approver under the shipped policy
AGENT = "ai-agent"


@pytest.fixture
def bunsui(settings):
    gateway = Gateway(settings)

    def call(actor: str, name: str, /, **args: Any) -> dict[str, Any]:
        return gateway.invoke(actor, name, args).model_dump(mode="json")

    return call


def failure(bunsui, actor: str, name: str, /, **args: Any) -> BunsuiError:
    with pytest.raises(BunsuiError) as caught:
        bunsui(actor, name, **args)
    return caught.value


def over_provisioned(store: SqliteStore, pipeline_id: str = "fat") -> Recorder:
    rec = Recorder(store, pipeline_id, job("small", memory=1024), job("other"))
    for _ in range(5):
        rec.run(small=Ran(peak=40, limit=1024), other=Ran(peak=100, limit=None))
    return rec


def cost_insight(bunsui, actor: str = OS_USER, pipeline: str = "fat") -> dict[str, Any]:
    listed = bunsui(actor, "insight:list", pipeline=pipeline, kind="cost")["insights"]
    assert [i["rule"] for i in listed] == ["memory_overprovisioned"]
    return listed[0]


def small_memory(store: SqliteStore, pipeline_id: str = "fat") -> int | None:
    return (
        store.get_pipeline(pipeline_id).pipeline.job("small").operations[0].config.memory_limit_mb
    )


class TestList:
    def test_filters_by_kind_confidence_and_status(self, store, bunsui):
        """--kind narrows to one kind, --min-confidence drops weaker ones."""
        over_provisioned(store)
        everything = bunsui(AGENT, "insight:list")["insights"]
        assert {i["kind"] for i in everything} == {"cost"}
        assert bunsui(AGENT, "insight:list", kind="performance")["insights"] == []
        assert bunsui(AGENT, "insight:list", min_confidence=0.99)["insights"] == []
        assert len(bunsui(AGENT, "insight:list", status="open")["insights"]) == 1

    def test_bad_arguments_are_coded_errors(self, store, bunsui):
        """Unknown pipeline, out-of-range confidence, a non-insight id: clear codes."""
        over_provisioned(store)
        assert failure(bunsui, AGENT, "insight:list", pipeline="nope").code == ErrorCode.NOT_FOUND
        for pipeline in ("../etc", "x" * 4000, "Nightly ETL"):
            assert failure(bunsui, AGENT, "insight:list", pipeline=pipeline).code == (
                ErrorCode.INVALID_ARGUMENT
            )
        assert (
            failure(bunsui, AGENT, "insight:list", min_confidence=2).code
            == ErrorCode.INVALID_ARGUMENT
        )
        assert failure(bunsui, AGENT, "insight:show", insight_id="ses-1").code == (
            ErrorCode.NOT_FOUND
        )
        assert failure(bunsui, AGENT, "insight:show", insight_id="ins-fat-00000000").code == (
            ErrorCode.NOT_FOUND
        )


class TestApply:
    def test_an_agent_gets_a_ticket_and_nothing_changes_until_approved(self, store, bunsui):
        """An agent's apply is a pending ticket; approving it runs the pipeline change."""
        over_provisioned(store)
        insight = cost_insight(bunsui, AGENT)
        preview = bunsui(AGENT, "insight:apply", insight_id=insight["insight_id"], dry_run=True)
        assert preview["result"]["diff"] == {"memory_mb": {"before": 1024, "after": 64}}
        assert (preview["dry_run"], preview["result"]["version"]) == (True, 1)
        pending = bunsui(
            AGENT,
            "insight:apply",
            insight_id=insight["insight_id"],
            expected_command=insight["suggestion"]["command"],
        )
        assert pending["status"] == "pending_approval"
        assert small_memory(store) == 1024
        assert cost_insight(bunsui, AGENT)["status"] == "open"

        done = bunsui(OS_USER, "approval:approve", ticket_id=pending["ticket_id"])
        assert done["status"] == "executed"
        assert done["result"]["result"]["version"] == 2
        assert small_memory(store) == 64
        [state] = store.list_insight_states("fat")
        assert (state.status, state.applied_version) == ("applied", 2)
        assert state.baseline == {"limit": 1024.0, "max_peak": 40.0}

    def test_the_ticket_binds_the_change_and_a_changed_suggestion_runs_nothing(self, store, bunsui):
        """The agent's ticket shows the exact pipeline diff; if newer runs change the
        suggestion before approval, approving it is CONFLICT and the pipeline is unchanged."""
        rec = over_provisioned(store)
        insight = cost_insight(bunsui, AGENT)
        pending = bunsui(AGENT, "insight:apply", insight_id=insight["insight_id"])
        ticket = bunsui(AGENT, "approval:show", ticket_id=pending["ticket_id"])
        change = ticket["preview"]["effect"]["change"]
        assert change["diff"] == {"memory_mb": {"before": 1024, "after": 64}}
        assert (change["from_version"], change["target_version"]) == (1, 2)
        assert ticket["preview"]["effect"]["command"] == insight["suggestion"]["command"]

        rec.run(small=Ran(peak=100, limit=1024), other=Ran(limit=None))  # now sized to 192
        done = bunsui(OS_USER, "approval:approve", ticket_id=pending["ticket_id"])
        assert (done["status"], done["error"]["code"]) == ("failed", "CONFLICT")
        assert small_memory(store) == 1024
        assert store.list_insight_states("fat") == []

    def test_a_person_applies_directly_and_other_jobs_are_untouched(self, store, bunsui):
        """A human's apply registers version 2 with only the suggested setting changed."""
        over_provisioned(store)
        insight = cost_insight(bunsui)
        applied = bunsui(OS_USER, "insight:apply", insight_id=insight["insight_id"])
        assert (applied["action"], applied["status"]) == ("pipeline:update-config", "applied")
        assert applied["result"]["diff"] == {"memory_mb": {"before": 1024, "after": 64}}
        before, after = store.get_pipeline("fat", 1).pipeline, store.get_pipeline("fat").pipeline
        assert after.job("other") == before.job("other")
        assert failure(bunsui, OS_USER, "insight:apply", insight_id=insight["insight_id"]).code == (
            ErrorCode.CONFLICT
        )

    def test_a_changed_suggestion_is_refused(self, store, bunsui):
        """expected_command binds what was reviewed: a different suggestion is CONFLICT."""
        over_provisioned(store)
        insight = cost_insight(bunsui)
        error = failure(
            bunsui,
            OS_USER,
            "insight:apply",
            insight_id=insight["insight_id"],
            expected_command="bunsui pipeline update-config fat --job small --memory 16",
        )
        assert error.code == ErrorCode.CONFLICT
        assert small_memory(store) == 1024

    def test_the_verdict_after_apply_feeds_later_confidence(self, store, bunsui):
        """Three good runs after a right-size: verdict helped, recorded as an outcome, and
        the same rule elsewhere is more confident for it."""
        rec = over_provisioned(store)
        insight = cost_insight(bunsui)
        bunsui(OS_USER, "insight:apply", insight_id=insight["insight_id"])
        rec.day = (datetime.now(UTC) - START).days + 1  # runs after the change
        for _ in range(2):
            rec.run(small=Ran(peak=41, limit=64), other=Ran(limit=None))
        shown = bunsui(OS_USER, "insight:show", insight_id=insight["insight_id"])
        assert shown["outcome"]["runs_since"] == 2
        assert shown["outcome"]["verdict"] is None
        rec.run(small=Ran(peak=42, limit=64), other=Ran(limit=None))
        shown = bunsui(OS_USER, "insight:show", insight_id=insight["insight_id"])
        assert (shown["status"], shown["outcome"]["verdict"]) == ("applied", "helped")
        [learned] = store.list_resolutions(error_code="INSIGHT_MEMORY_OVERPROVISIONED")
        assert (learned.fingerprint, learned.outcome) == (insight["insight_id"], "success")
        # recorded once, however often it is read
        bunsui(OS_USER, "insight:list")
        assert len(store.list_resolutions(error_code="INSIGHT_MEMORY_OVERPROVISIONED")) == 1

        over_provisioned(store, "fat2")
        other = cost_insight(bunsui, pipeline="fat2")
        assert other["confidence_basis"]["successes"] == 1
        assert other["confidence"] > other["confidence_basis"]["prior"]

    def test_two_readers_judging_at_once_teach_the_outcome_once(self, store, bunsui, monkeypatch):
        """Two agents listing at the same moment both find the applied insight unjudged and
        both judge it: the rule still learns one outcome, not two."""
        rec = over_provisioned(store)
        insight = cost_insight(bunsui)
        bunsui(OS_USER, "insight:apply", insight_id=insight["insight_id"])
        rec.day = (datetime.now(UTC) - START).days + 1
        for _ in range(3):
            rec.run(small=Ran(peak=41, limit=64), other=Ran(limit=None))
        unjudged = store.list_insight_states("fat")
        with monkeypatch.context() as patched:  # each reader listed before the other wrote
            patched.setattr(SqliteStore, "list_insight_states", lambda _self, _id: unjudged)
            for _ in range(2):
                bunsui(OS_USER, "insight:show", insight_id=insight["insight_id"])
        assert len(store.list_resolutions(fingerprint=insight["insight_id"])) == 1
        [stats] = store.action_stats(error_code="INSIGHT_MEMORY_OVERPROVISIONED")
        assert (stats.successes, stats.failures) == (1, 0)
        [state] = store.list_insight_states("fat")
        assert state.verdict == "helped"

    def test_a_read_interrupted_between_its_writes_is_finished_by_the_next(
        self, store, bunsui, monkeypatch
    ):
        """Ctrl-C after the outcome is learned but before the verdict is stored: the next
        read stores the verdict and learns nothing twice."""
        rec = over_provisioned(store)
        insight = cost_insight(bunsui)
        bunsui(OS_USER, "insight:apply", insight_id=insight["insight_id"])
        rec.day = (datetime.now(UTC) - START).days + 1
        for _ in range(3):
            rec.run(small=Ran(peak=64, limit=64, status="failed"), other=Ran(limit=None))

        def interrupted(_self, _state):
            raise KeyboardInterrupt

        with monkeypatch.context() as patched:
            patched.setattr(SqliteStore, "put_insight_state", interrupted)
            with pytest.raises(KeyboardInterrupt):
                bunsui(OS_USER, "insight:list")
        shown = bunsui(OS_USER, "insight:show", insight_id=insight["insight_id"])
        assert shown["outcome"]["verdict"] == "did_not_help"
        [stats] = store.action_stats(error_code="INSIGHT_MEMORY_OVERPROVISIONED")
        assert (stats.successes, stats.failures) == (0, 1)
        assert store.list_insight_states("fat")[0].verdict == "did_not_help"

    def test_a_change_that_failed_lowers_confidence(self, store, bunsui):
        """Runs failing after a right-size: did_not_help, and the rule's confidence drops."""
        rec = over_provisioned(store)
        insight = cost_insight(bunsui)
        bunsui(OS_USER, "insight:apply", insight_id=insight["insight_id"])
        rec.day = (datetime.now(UTC) - START).days + 1
        for _ in range(3):
            rec.run(small=Ran(peak=64, limit=64, status="failed"), other=Ran(limit=None))
        shown = bunsui(OS_USER, "insight:show", insight_id=insight["insight_id"])
        assert shown["outcome"]["verdict"] == "did_not_help"
        over_provisioned(store, "fat2")
        other = cost_insight(bunsui, pipeline="fat2")
        assert other["confidence_basis"]["failures"] == 1
        assert other["confidence"] < other["confidence_basis"]["prior"]

    def test_a_limit_raise_that_was_not_enough_opens_again(self, store, bunsui):
        """Peaks kept growing past the raised limit: did_not_help, and the same insight is
        open again with a bigger size, ready to be applied anew."""
        rec = Recorder(store, "grow", job("load", memory=512))
        for peak in (200, 240, 280, 320, 360):
            rec.run(load=Ran(peak=peak, limit=512))
        first = bunsui(OS_USER, "insight:list", pipeline="grow", kind="preventive")["insights"][0]
        assert first["suggestion"]["change"]["memory_mb"]["after"] == 704
        bunsui(OS_USER, "insight:apply", insight_id=first["insight_id"])
        rec.day = (datetime.now(UTC) - START).days + 1
        for peak in (600, 650, 700):
            rec.run(load=Ran(peak=peak, limit=704))
        again = bunsui(OS_USER, "insight:show", insight_id=first["insight_id"])
        assert (again["status"], again["outcome"]["verdict"]) == ("open", "did_not_help")
        assert again["suggestion"]["change"]["memory_mb"]["before"] == 704
        assert again["confidence_basis"]["failures"] == 1
        bunsui(OS_USER, "insight:apply", insight_id=first["insight_id"])
        bigger = store.get_pipeline("grow").pipeline.job("load").operations[0].config
        assert bigger.memory_limit_mb == again["suggestion"]["change"]["memory_mb"]["after"]

    def test_a_suggestion_to_look_runs_and_stays_open(self, store, bunsui):
        """Applying a read-only suggestion (pipeline stats) returns its output and changes
        nothing, so the insight stays open."""
        recorded_chain(store)
        [insight] = bunsui(OS_USER, "insight:list", pipeline="chain", kind="performance")[
            "insights"
        ]
        assert insight["rule"] == "critical_path"
        done = bunsui(OS_USER, "insight:apply", insight_id=insight["insight_id"])
        assert (done["action"], done["status"]) == ("pipeline:stats", "open")
        assert done["result"]["critical_path"] == ["extract", "transform", "load"]
        assert store.list_insight_states("chain") == []


class TestDismiss:
    def test_dismissed_with_a_reason_and_hidden_from_open(self, store, bunsui):
        """Dismiss keeps the reason; status open no longer lists it; an agent needs a ticket;
        a reason too short to say anything is refused."""
        over_provisioned(store)
        insight = cost_insight(bunsui)
        asked = bunsui(
            AGENT, "insight:dismiss", insight_id=insight["insight_id"], reason="not needed"
        )
        assert asked["status"] == "pending_approval"
        dismissed = bunsui(
            OS_USER, "insight:dismiss", insight_id=insight["insight_id"], reason="shared host"
        )
        assert dismissed["status"] == "dismissed"
        assert dismissed["status_reason"] == f"shared host ({OS_USER})"
        assert dismissed == bunsui(OS_USER, "insight:show", insight_id=insight["insight_id"])
        assert bunsui(OS_USER, "insight:list", status="open")["insights"] == []
        error = failure(
            bunsui, OS_USER, "insight:dismiss", insight_id=insight["insight_id"], reason="x"
        )
        assert error.code == ErrorCode.INVALID_ARGUMENT


class TestPipelineChanges:
    def test_update_config_validates_and_reverts(self, store, bunsui):
        """Job settings need --job, unknown jobs are NOT_FOUND, revert restores a version."""
        over_provisioned(store)
        assert failure(
            bunsui, OS_USER, "pipeline:update-config", pipeline_id="fat", memory=64
        ).code == (ErrorCode.INVALID_ARGUMENT)
        assert (
            failure(
                bunsui, OS_USER, "pipeline:update-config", pipeline_id="fat", job="nope", memory=64
            ).code
            == ErrorCode.NOT_FOUND
        )
        changed = bunsui(
            OS_USER, "pipeline:update-config", pipeline_id="fat", job="small", timeout=30
        )
        assert (changed["version"], changed["diff"]) == (
            2,
            {"timeout_seconds": {"before": None, "after": 30}},
        )
        reverted = bunsui(OS_USER, "pipeline:update-config", pipeline_id="fat", revert_to=1)
        assert reverted["version"] == 3
        assert (
            store.get_pipeline("fat", 3).content_hash == store.get_pipeline("fat", 1).content_hash
        )
        same = bunsui(OS_USER, "pipeline:update-config", pipeline_id="fat", revert_to=1)
        assert (same["version"], same["diff"]) == (3, {})

    def test_stats_and_cost(self, store, bunsui):
        """Per-job percentiles and the priced summary over the recorded runs."""
        rec = Recorder(store, "mix", job("a", memory=1024), job("b", deps=["a"]))
        for n in range(10):
            rec.run(
                a=Ran(elapsed=10 + n, peak=100 + n, limit=1024),
                b=Ran(elapsed=5, start=10 + n, limit=None),
            )
        stats = bunsui(AGENT, "pipeline:stats", pipeline_id="mix")
        a = stats["jobs"][0]
        assert a["duration_seconds"] == {"p50": 14.5, "p90": 18.1, "max": 19.0}
        assert a["peak_rss_mb"]["max"] == 109.0
        assert stats["critical_path"] == ["a", "b"]
        assert bunsui(AGENT, "pipeline:stats", pipeline_id="mix", runs=3)["runs"] == 3
        cost = bunsui(AGENT, "pipeline:cost", pipeline_id="mix")
        assert cost["prices"]["region"] == "us-east-1"
        assert cost["runs_per_month"] == pytest.approx(30.0)
        assert cost["jobs"][0]["reserved_gib_hours_per_month"] == pytest.approx(
            30 * 1.0 * 14.5 / 3600, rel=1e-3
        )
        assert cost["dollars_per_month"] is None
        assert (
            failure(bunsui, AGENT, "pipeline:cost", pipeline_id="nope").code == ErrorCode.NOT_FOUND
        )
