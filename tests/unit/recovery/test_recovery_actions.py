"""Diagnosis and recovery through the gateway: real processes, real SQLite, real reruns."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bunsui_core.actions import Gateway
from bunsui_core.errors import BunsuiError
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, etl_pipeline, pipeline_data

ACTOR = getpass.getuser()  # an operator under the shipped policy


class Bunsui:
    """The gateway as an adapter uses it, plus a helper to wait for detached sessions."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def __call__(self, name: str, /, **args: Any) -> dict[str, Any]:
        return self.gateway.invoke(ACTOR, name, args).model_dump(mode="json")

    def error(self, name: str, /, **args: Any) -> BunsuiError:
        with pytest.raises(BunsuiError) as caught:
            self.gateway.invoke(ACTOR, name, args)
        return caught.value

    def wait(self, session_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session = self("session:describe", session_id=session_id)
            if session["status"] in {"completed", "failed", "cancelled", "timeout"}:
                return session
            time.sleep(0.1)
        raise AssertionError(f"session {session_id} did not finish")


@pytest.fixture
def bunsui(settings) -> Bunsui:
    return Bunsui(Gateway(settings))


def failed_etl(bunsui: Bunsui, tmp_path: Path) -> str:
    session = bunsui("pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
    assert session["status"] == "failed"
    return session["session_id"]


class TestOutOfMemoryRecovery:
    @pytest.mark.slow
    def test_oom_is_analyzed_planned_recovered_and_learned(self, bunsui, tmp_path, settings):
        """A real OOM is classified, the top plan raises memory from evidence, the rerun skips
        extract (its side effect happens once) and completes, and the confidence rises."""
        session_id = failed_etl(bunsui, tmp_path)

        analysis = bunsui("error:analyze", session_id=session_id)
        [error] = analysis["errors"]
        assert (error["error_code"], error["category"]) == ("LOCAL_MEMORY_LIMIT", "RESOURCE")
        assert error["context"]["memory_limit_mb"] == 96
        # An OOM kill says nothing about the size asked for: the plan sizes from the peak.
        assert error["context"]["oom_killed"] is True
        assert "required_mb" not in error["context"]
        assert error["message"]["trust"] == "untrusted_pipeline_output"
        top = error["recovery_suggestions"][0]
        assert top["action"] == "increase_memory"
        assert top["basis"] == {
            "prior": 0.85,
            "prior_weight": 4.0,
            "successes": 0,
            "failures": 0,
            "observed_for": "none",
        }
        before = top["confidence"]

        plans = bunsui("recovery:suggest", session_id=session_id)["recovery_plans"]
        plan = plans[0]
        assert plan["action"] == "increase_memory"
        assert plan["executable"]
        assert [s["action"] for s in plan["steps"]] == ["update-config", "rerun"]
        assert any("load" in risk for risk in plan["risks"])

        preview = bunsui("recovery:execute", plan_id=plan["plan_id"])
        assert preview["dry_run"] is True
        new_memory = preview["steps"][0]["result"]["diff"]["memory_mb"]
        assert new_memory["before"] == 96
        assert 150 < new_memory["after"] <= 512
        assert preview["steps"][1]["result"]["skipped_jobs"] == ["extract"]
        store = SqliteStore(settings.database_path)
        assert store.list_override_versions(session_id) == []

        done = bunsui("recovery:execute", plan_id=plan["plan_id"], dry_run=False)
        assert [s["status"] for s in done["steps"]] == ["done", "done"]
        rerun = done["steps"][1]["result"]
        assert rerun["skipped_jobs"] == ["extract"]
        assert rerun["jobs_to_run"] == ["transform", "load"]
        finished = bunsui.wait(rerun["session_id"])
        assert finished["status"] == "completed"
        assert finished["parent_session_id"] == session_id
        jobs = {j["job_id"]: j["status"] for j in finished["jobs"]}
        assert jobs == {"extract": "skipped", "transform": "completed", "load": "completed"}
        assert (tmp_path / "extract_runs.log").read_text() == "run\n"

        learned = bunsui("error:resolutions", error_code="LOCAL_MEMORY_LIMIT")
        assert learned["totals"][0]["action"] == "increase_memory"
        assert learned["totals"][0]["successes"] == 1
        again = bunsui("error:analyze", session_id=session_id)["errors"][0]
        top_again = again["recovery_suggestions"][0]
        assert top_again["confidence"] > before
        assert top_again["basis"]["observed_for"] == "fingerprint"
        store.close()

    def test_smaller_batch_rerun_passes_without_more_memory(self, bunsui, tmp_path):
        """The batch-size plan scales the batch to the memory that was free, and it works."""
        session_id = failed_etl(bunsui, tmp_path)
        result = bunsui(
            "job:rerun",
            job_id="transform",
            session_id=session_id,
            skip_successful=True,
            batch_size=20,
            wait=True,
        )
        assert result["status"] == "completed"
        assert result["skipped_jobs"] == ["extract"]


class TestReruns:
    def test_repeated_request_returns_the_same_rerun(self, bunsui, tmp_path):
        """An agent retrying a call gets the first rerun back, not a second one."""
        session_id = failed_etl(bunsui, tmp_path)
        first = bunsui(
            "job:rerun",
            job_id="transform",
            session_id=session_id,
            skip_successful=True,
            batch_size=20,
            wait=True,
        )
        second = bunsui(
            "job:rerun",
            job_id="transform",
            session_id=session_id,
            skip_successful=True,
            batch_size=20,
            wait=True,
        )
        assert first["created"] is True
        assert second["created"] is False
        assert second["session_id"] == first["session_id"]
        keyed = bunsui(
            "job:rerun",
            job_id="transform",
            session_id=session_id,
            skip_successful=True,
            batch_size=20,
            idempotency_key="agent-call-0001",
        )
        assert keyed["session_id"] != first["session_id"]
        assert (
            bunsui(
                "job:rerun",
                job_id="transform",
                session_id=session_id,
                skip_successful=True,
                batch_size=20,
                idempotency_key="agent-call-0001",
            )["session_id"]
            == keyed["session_id"]
        )
        bunsui.wait(keyed["session_id"])

    @pytest.mark.slow
    def test_rerun_refused_while_the_original_runs(self, bunsui, tmp_path):
        """A running session cannot be rerun: SESSION_ACTIVE."""
        path = tmp_path / "long.yaml"
        path.write_text(
            yaml.safe_dump(pipeline_data(command_job("long", "import time; time.sleep(30)")))
        )
        running = bunsui("pipeline:run", pipeline=str(path))
        error = bunsui.error("job:rerun", job_id="long", session_id=running["session_id"])
        assert error.code == "SESSION_ACTIVE"
        bunsui("session:cancel", session_id=running["session_id"])
        assert bunsui.wait(running["session_id"])["status"] == "cancelled"

    def test_marked_job_is_skipped_by_a_checkpoint_rerun(self, bunsui, tmp_path):
        """After `job mark` a checkpoint rerun skips the job a person fixed."""
        session_id = failed_etl(bunsui, tmp_path)
        marked = bunsui(
            "job:mark",
            job_id="transform",
            session_id=session_id,
            status="succeeded",
            reason="ran it by hand with more memory",
        )
        assert marked["marked_by"] == ACTOR
        batch = bunsui("session:rerun", session_id=session_id, strategy="checkpoint")
        [rerun] = batch["reruns"]
        assert rerun["skipped_jobs"] == ["extract", "transform"]
        assert rerun["jobs_to_run"] == ["load"]

    def test_bulk_rerun_reruns_each_failed_session(self, bunsui, tmp_path):
        """A filter reruns every matching failed session, each as its own linked rerun."""
        first, second = failed_etl(bunsui, tmp_path), failed_etl(bunsui, tmp_path)
        batch = bunsui(
            "session:rerun", filter={"status": "failed", "pipeline_id": "etl"}, from_failed=True
        )
        assert {r["original_session_id"] for r in batch["reruns"]} == {first, second}
        assert all(r["strategy"] == "failed-only" for r in batch["reruns"])
        assert batch["failures"] == []
        for rerun in batch["reruns"]:
            bunsui.wait(rerun["session_id"])

    def test_retry_budget_stops_endless_reruns(self, bunsui, tmp_path):
        """After the budget of reruns, more are refused and suggest only escalates."""
        session_id = failed_etl(bunsui, tmp_path)
        for attempt in range(5):
            bunsui(
                "job:rerun",
                job_id="transform",
                session_id=session_id,
                wait=True,
                idempotency_key=f"budget-{attempt:04d}",
            )
        error = bunsui.error("job:rerun", job_id="transform", session_id=session_id)
        assert error.code == "RETRY_BUDGET_EXHAUSTED"
        plans = bunsui("recovery:suggest", session_id=session_id)["recovery_plans"]
        assert [p["action"] for p in plans] == ["escalate"]
        assert "retry budget" in plans[0]["description"]


class TestOverrides:
    def test_update_config_is_versioned_diffed_and_revertable(self, bunsui, tmp_path):
        """Each change is a version with a before/after diff; reverting restores the old."""
        session_id = failed_etl(bunsui, tmp_path)
        first = bunsui(
            "job:update-config",
            job_id="transform",
            session_id=session_id,
            memory=512,
            param={"mode": "fast", "limit": "10"},
        )
        assert first["override_version"] == 1
        assert first["diff"] == {
            "memory_mb": {"before": 96, "after": 512},
            "parameters.limit": {"before": None, "after": 10},
            "parameters.mode": {"before": None, "after": "fast"},
        }
        reverted = bunsui(
            "job:update-config", job_id="transform", session_id=session_id, revert_to=0
        )
        assert reverted["override_version"] == 2
        assert reverted["diff"]["memory_mb"] == {"before": 512, "after": 96}
        error = bunsui.error("job:update-config", job_id="transform", session_id=session_id)
        assert error.code == "INVALID_ARGUMENT"
        error = bunsui.error("job:update-config", job_id="nope", session_id=session_id, memory=256)
        assert error.code == "NOT_FOUND"

    def test_rerun_uses_the_override(self, bunsui, tmp_path):
        """A rerun after update-config runs with the new memory and completes."""
        session_id = failed_etl(bunsui, tmp_path)
        bunsui("job:update-config", job_id="transform", session_id=session_id, memory=512)
        result = bunsui(
            "job:rerun", job_id="transform", session_id=session_id, skip_successful=True, wait=True
        )
        assert result["status"] == "completed"
        jobs = bunsui("job:list", session_id=result["session_id"])["jobs"]
        transform = next(j for j in jobs if j["job_id"] == "transform")
        assert transform["operations"][0]["memory_limit_mb"] == 512


class TestPlansThatNeedPeople:
    def test_data_error_escalates_and_cannot_be_executed(self, bunsui):
        """A schema failure gets plans a person must carry out; executing one is refused."""
        examples = Path(__file__).resolve().parents[3] / "examples"
        session = bunsui(
            "pipeline:run", pipeline=str(examples / "data_quality" / "pipeline.yaml"), wait=True
        )
        error = bunsui("error:analyze", session_id=session["session_id"])["errors"][0]
        assert error["error_code"] == "DATA_SCHEMA_VALIDATION"
        assert error["recoverable"] is False
        plans = bunsui("recovery:suggest", session_id=session["session_id"])["recovery_plans"]
        assert plans
        assert not any(p["executable"] for p in plans)
        refused = bunsui.error("recovery:execute", plan_id=plans[0]["plan_id"], dry_run=False)
        assert refused.code == "NOT_EXECUTABLE"

    def test_failed_step_rolls_back_config_changes(self, bunsui, tmp_path, settings):
        """When the rerun step fails, the override made by the first step is reverted."""
        session_id = failed_etl(bunsui, tmp_path)
        plan = bunsui("recovery:suggest", session_id=session_id)["recovery_plans"][0]
        for attempt in range(5):
            bunsui(
                "job:rerun",
                job_id="transform",
                session_id=session_id,
                wait=True,
                idempotency_key=f"spend-{attempt:04d}",
            )
        error = bunsui.error("recovery:execute", plan_id=plan["plan_id"], dry_run=False)
        assert error.code == "STEP_FAILED"
        statuses = [s["status"] for s in error.details["steps"]]
        assert statuses == ["rolled_back", "failed"]
        store = SqliteStore(settings.database_path)
        versions = store.list_override_versions(session_id, "transform")
        store.close()
        assert [v.version for v in versions] == [1, 2]
        assert versions[-1].override.memory_mb is None


class TestClassifyAndLearn:
    def test_unknown_text_escalates(self, bunsui):
        """Unrecognised text is UNKNOWN with escalate, never a confident guess."""
        result = bunsui("error:classify", message="the flux capacitor is sad")
        assert result["error_code"] == "UNKNOWN"
        assert [s["action"] for s in result["recovery_suggestions"]] == ["escalate"]

    def test_manual_outcomes_move_confidence(self, bunsui):
        """Outcomes recorded with `error learn` change the confidence for that error code."""
        message = "botocore.exceptions.ClientError: ThrottlingException: Rate exceeded"
        before = bunsui("error:classify", message=message)["recovery_suggestions"][0]
        for _ in range(3):
            bunsui(
                "error:learn",
                error_code="AWS_THROTTLING",
                action="retry_with_backoff",
                outcome="failure",
                note="still throttled",
            )
        after = bunsui("error:classify", message=message)["recovery_suggestions"]
        backoff = next(s for s in after if s["action"] == "retry_with_backoff")
        assert backoff["confidence"] < before["confidence"]
        assert backoff["basis"]["failures"] == 3
        assert backoff["basis"]["observed_for"] == "error_code"


# Needs ~300 MiB resident and says nothing about how much when it cannot have it.
NEEDS_300_MIB = (
    "import os\n"
    "b = bytearray(300 * 2**20)\n"
    "for i in range(0, len(b), 4096):\n"
    "    b[i] = 1\n"
    "open(os.path.join(os.environ['BUNSUI_WORKDIR'], 'out'), 'w').write('ok')\n"
)


class TestUnsizedOutOfMemoryConverges:
    @pytest.mark.slow
    def test_job_needing_300_mib_under_128_recovers_within_two_reruns(self, bunsui, tmp_path):
        """A memory failure that does not say how much was wanted gets a first step of at least
        double, and a second failure in a row escalates: following the top plan each time, a
        job needing 300 MiB under `memory: 128` completes within two reruns."""
        path = tmp_path / "hungry.yaml"
        path.write_text(
            yaml.safe_dump(
                pipeline_data(
                    command_job("hungry", NEEDS_300_MIB, parameters={"memory": 128}),
                    name="hungry",
                )
            )
        )
        session = bunsui("pipeline:run", pipeline=str(path), wait=True)
        limits = [128]
        reruns = 0
        while session["status"] == "failed" and reruns < 2:
            plan = bunsui("recovery:suggest", session_id=session["session_id"])["recovery_plans"][0]
            assert plan["action"] == "increase_memory", plan
            done = bunsui("recovery:execute", plan_id=plan["plan_id"], dry_run=False)
            memory = done["steps"][0]["result"]["diff"]["memory_mb"]
            assert memory["before"] == limits[-1]
            limits.append(memory["after"])
            session = bunsui.wait(done["steps"][1]["result"]["session_id"])
            reruns += 1
        assert session["status"] == "completed", limits
        assert limits[1] >= 2 * limits[0]
        if len(limits) == 3:
            assert limits[2] >= 4 * limits[1], "a second memory failure in a row escalates"
