"""Several agents on one set of failures: claims (leases), escalations and budgets, enforced
in the gateway for every adapter. Real SQLite, real pipeline processes, the shipped policy."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError
from bunsui_core.governance.policy_file import LivePolicy
from bunsui_core.store.base import update_session
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import etl_pipeline

HUMAN = getpass.getuser()  # operator + approver under the shipped policy
AGENT_1 = "ai-agent-1"
AGENT_2 = "ai-agent-2"


class Home:
    """One bunsui home through the gateway."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway = Gateway(settings)

    def __call__(self, actor: str, name: str, /, **args: Any) -> dict[str, Any]:
        return self.gateway.invoke(actor, name, args).model_dump(mode="json")

    def error(self, actor: str, name: str, /, **args: Any) -> BunsuiError:
        with pytest.raises(BunsuiError) as caught:
            self.gateway.invoke(actor, name, args)
        return caught.value

    def expire_claim(self, session_id: str) -> None:
        """Move the claim's expiry into the past, as if its holder had died 15 minutes ago."""
        store = SqliteStore(self.settings.database_path)
        try:
            update_session(
                store,
                session_id,
                lambda s: s.model_copy(
                    update={
                        "claim": s.claim.model_copy(
                            update={"expires_at": "2000-01-01T00:00:00.000000Z"}
                        )
                    }
                ),
            )
        finally:
            store.close()

    def tickets(self, actor: str) -> list[dict[str, Any]]:
        return self(HUMAN, "approval:list", requested_by=actor)["tickets"]


@pytest.fixture
def home(settings: Settings) -> Home:
    return Home(settings)


@pytest.fixture
def failed(home: Home, tmp_path: Path) -> str:
    """A session of the etl pipeline whose transform job ran out of memory."""
    session = home(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
    assert session["status"] == "failed"
    return session["session_id"]


class TestClaims:
    def test_a_claim_names_its_holder_and_expiry_everywhere(self, home, failed):
        """A claim is visible in claims, session list and describe, with holder and expiry."""
        view = home(AGENT_1, "session:claim", session_id=failed, note="looking at the OOM")
        assert view["claimed_by"] == AGENT_1
        assert view["note"] == "looking at the OOM"
        assert view["claim_expires_at"] > view["acquired_at"]
        [listed] = home(AGENT_2, "session:claims")["claims"]
        assert (listed["session_id"], listed["claimed_by"]) == (failed, AGENT_1)
        [summary] = home(AGENT_2, "session:list")["sessions"]
        assert summary["claimed_by"] == AGENT_1
        assert summary["claim_expires_at"] == view["claim_expires_at"]
        assert home(AGENT_2, "session:describe", session_id=failed)["claimed_by"] == AGENT_1

    def test_another_agents_claim_is_a_conflict_naming_the_holder(self, home, failed):
        """The second agent is told who holds the session and until when."""
        home(AGENT_1, "session:claim", session_id=failed)
        error = home.error(AGENT_2, "session:claim", session_id=failed)
        assert error.code == "CONFLICT"
        assert error.details["claimed_by"] == AGENT_1
        assert error.details["claim_expires_at"]

    def test_claiming_again_renews_and_keeps_the_acquisition_time(self, home, failed):
        """The holder renews by claiming again; the lease moves, the start stays."""
        first = home(AGENT_1, "session:claim", session_id=failed, ttl=60)
        time.sleep(0.01)
        again = home(AGENT_1, "session:claim", session_id=failed, ttl=600)
        assert again["acquired_at"] == first["acquired_at"]
        assert again["claim_expires_at"] > first["claim_expires_at"]

    def test_an_expired_claim_is_taken_over_and_recorded_as_such(self, home, failed):
        """A lapsed lease goes to whoever claims next, with the previous holder recorded."""
        home(AGENT_1, "session:claim", session_id=failed)
        home.expire_claim(failed)
        taken = home(AGENT_2, "session:claim", session_id=failed)
        assert (taken["claimed_by"], taken["taken_over_from"]) == (AGENT_2, AGENT_1)
        statuses = [
            e["status"]
            for e in home(HUMAN, "events:tail", limit=1000)["events"]
            if e["kind"] == "claim"
        ]
        assert statuses == ["claimed", "taken_over"]

    def test_unowned_failures_are_found_with_a_filter(self, home, failed, tmp_path):
        """claimed=false lists failures nobody works on; claimed=true the others."""
        other = home(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        home(AGENT_1, "session:claim", session_id=failed)
        free = home(AGENT_2, "session:list", filter={"status": "failed", "claimed": False})
        held = home(AGENT_2, "session:list", filter={"claimed": True})
        assert [s["session_id"] for s in free["sessions"]] == [other["session_id"]]
        assert [s["session_id"] for s in held["sessions"]] == [failed]

    def test_release_frees_the_session_and_only_the_holder_may(self, home, failed):
        """Another agent cannot release a live claim; the holder can."""
        home(AGENT_1, "session:claim", session_id=failed)
        assert home.error(AGENT_2, "session:release", session_id=failed).code == "CONFLICT"
        assert home(AGENT_1, "session:release", session_id=failed)["claimed_by"] is None
        assert home(AGENT_2, "session:claim", session_id=failed)["claimed_by"] == AGENT_2


class TestWritesOnClaimedSessions:
    def test_another_agents_write_is_refused_before_any_ticket(self, home, failed):
        """A rerun request by a non-holder is CONFLICT naming the holder; no ticket opens."""
        home(AGENT_1, "session:claim", session_id=failed)
        error = home.error(AGENT_2, "job:rerun", job_id="transform", session_id=failed)
        assert (error.code, error.details["claimed_by"]) == ("CONFLICT", AGENT_1)
        assert home.tickets(AGENT_2) == []

    def test_the_holder_gets_its_ticket(self, home, failed):
        """The holder's write proceeds as usual (a ticket under the shipped policy)."""
        home(AGENT_1, "session:claim", session_id=failed)
        pending = home(AGENT_1, "job:rerun", job_id="transform", session_id=failed)
        assert pending["status"] == "pending_approval"

    def test_a_human_write_is_refused_too_until_a_forced_takeover(self, home, failed):
        """Humans respect claims; `--force` takes the session over, naming the previous holder."""
        home(AGENT_1, "session:claim", session_id=failed)
        error = home.error(
            HUMAN,
            "job:mark",
            job_id="transform",
            session_id=failed,
            status="succeeded",
            reason="fixed by hand",
        )
        assert error.code == "CONFLICT"
        taken = home(HUMAN, "session:claim", session_id=failed, force=True)
        assert (taken["claimed_by"], taken["taken_over_from"]) == (HUMAN, AGENT_1)
        home(
            HUMAN,
            "job:mark",
            job_id="transform",
            session_id=failed,
            status="succeeded",
            reason="fixed by hand",
        )

    def test_a_forced_takeover_and_release_are_audited_with_the_previous_holder(self, home, failed):
        """The audit log, not only the session record, says whose claim a person overrode;
        an ordinary claim and release record no outcome."""
        home(AGENT_1, "session:claim", session_id=failed)
        assert home(HUMAN, "session:claim", session_id=failed, force=True)["previous_holder"] == (
            AGENT_1
        )
        home(HUMAN, "session:release", session_id=failed)
        home(AGENT_2, "session:claim", session_id=failed)
        home(HUMAN, "session:release", session_id=failed, force=True)
        entries = home(HUMAN, "audit:list", session_id=failed, limit=50)["entries"]
        outcomes = [
            (e["actor"], e["action"], e["outcome"])
            for e in entries
            if e["action"] in {"session:claim", "session:release"}
        ]
        assert sorted(outcomes, key=str) == sorted(
            [
                (AGENT_1, "session:claim", None),
                (HUMAN, "session:claim", {"previous_holder": AGENT_1}),
                (HUMAN, "session:release", None),
                (AGENT_2, "session:claim", None),
                (HUMAN, "session:release", {"previous_holder": AGENT_2}),
            ],
            key=str,
        )

    def test_agents_cannot_force(self, home, failed):
        """A forced takeover is a human's override, never an agent's."""
        home(AGENT_1, "session:claim", session_id=failed)
        error = home.error(AGENT_2, "session:claim", session_id=failed, force=True)
        assert error.code == "PERMISSION_DENIED"

    def test_a_holders_ticket_does_not_run_once_someone_else_holds_the_session(self, home, failed):
        """A ticket executes only while its requester's claim holds or nobody's does."""
        home(AGENT_1, "session:claim", session_id=failed)
        ticket = home(AGENT_1, "job:rerun", job_id="transform", session_id=failed)
        home.expire_claim(failed)
        home(AGENT_2, "session:claim", session_id=failed)
        decided = home(HUMAN, "approval:approve", ticket_id=ticket["ticket_id"])
        assert decided["status"] == "failed"
        assert decided["error"]["code"] == "CONFLICT"
        assert decided["error"]["details"]["claimed_by"] == AGENT_2

    def test_a_holders_rerun_starts_claimed_by_the_holder(self, home, failed):
        """No other agent can pick up the rerun (or its failure) in the moment after it starts."""
        home(AGENT_1, "session:claim", session_id=failed)
        ticket = home(AGENT_1, "job:rerun", job_id="transform", session_id=failed)
        decided = home(HUMAN, "approval:approve", ticket_id=ticket["ticket_id"])
        rerun = decided["result"]["session_id"]
        assert home(AGENT_2, "session:describe", session_id=rerun)["claimed_by"] == AGENT_1


class TestEscalation:
    def test_escalation_stops_agents_until_a_human_resolves_it(self, home, failed):
        """After an escalation agents' writes and claims are ESCALATED; a person resolves."""
        home(AGENT_1, "session:claim", session_id=failed)
        view = home(AGENT_1, "session:escalate", session_id=failed, reason="needs a data fix")
        assert view["escalated"] is True
        assert (view["escalated_by"], view["claimed_by"]) == (AGENT_1, None)
        for actor in (AGENT_1, AGENT_2):
            assert home.error(actor, "session:claim", session_id=failed).code == "ESCALATED"
            error = home.error(actor, "job:rerun", job_id="transform", session_id=failed)
            assert error.code == "ESCALATED"
        queue = home(HUMAN, "session:list", filter={"escalated": True})["sessions"]
        assert [s["session_id"] for s in queue] == [failed]
        assert home.error(AGENT_1, "session:resolve-escalation", session_id=failed).code == (
            "PERMISSION_DENIED"
        )
        home(HUMAN, "session:resolve-escalation", session_id=failed)
        assert home(AGENT_2, "session:claim", session_id=failed)["claimed_by"] == AGENT_2

    def test_a_human_write_resolves_the_escalation(self, home, failed):
        """A person acting on an escalated session hands it back to the agents."""
        home(AGENT_1, "session:escalate", session_id=failed, reason="bad input row")
        home(HUMAN, "job:update-config", job_id="transform", session_id=failed, memory=256)
        assert home(HUMAN, "session:describe", session_id=failed)["escalated"] is False
        kinds = [
            e["status"]
            for e in home(HUMAN, "events:tail", limit=1000)["events"]
            if e["kind"] == "claim"
        ]
        assert kinds == ["escalated", "escalation_resolved"]

    def test_an_escalated_ticket_does_not_run_for_an_agent(self, home, failed):
        """A ticket requested before the escalation fails with ESCALATED when approved."""
        ticket = home(AGENT_1, "job:rerun", job_id="transform", session_id=failed)
        home(AGENT_2, "session:escalate", session_id=failed, reason="looks like bad data")
        decided = home(HUMAN, "approval:approve", ticket_id=ticket["ticket_id"])
        assert (decided["status"], decided["error"]["code"]) == ("failed", "ESCALATED")


LIMITED_POLICY = """
agent:
  kind: agent
  allowed_actions: ["session:*", "job:*", "approval:list", "events:tail", "policy:*"]
  approval_required: ["job:update-config"]
  limits: {reruns_per_hour: 2, tickets_pending_max: 1, claims_max: 1}
human:
  kind: human
  allowed_actions: ["*"]
actors:
  "ai-agent-*": agent
  "$OS_USER": human
"""


@pytest.fixture
def limited(tmp_path: Path) -> Home:
    """A home whose policy gives agents small budgets."""
    policy = tmp_path / "limited.yaml"
    policy.write_text(LIMITED_POLICY)
    return Home(Settings.resolve(tmp_path / "limited-home", policy=policy))


class TestBudgets:
    def test_pending_tickets_over_budget_are_throttled(self, limited, tmp_path):
        """A second pending ticket is THROTTLED with retry_after; the same one is not."""
        session = limited(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        sid = session["session_id"]
        limited(AGENT_1, "job:update-config", job_id="transform", session_id=sid, memory=256)
        again = limited(
            AGENT_1, "job:update-config", job_id="transform", session_id=sid, memory=256
        )
        assert again["status"] == "pending_approval"
        error = limited.error(
            AGENT_1, "job:update-config", job_id="transform", session_id=sid, memory=512
        )
        assert error.code == "THROTTLED"
        assert error.details["limit"] == "tickets_pending_max"
        assert error.details["retry_after_seconds"] > 0

    def test_one_call_sees_one_version_of_the_policy(self, limited, tmp_path, monkeypatch):
        """The policy file edited while a call runs: the ticket gets the hash and the budget
        of the version the call began with, and the next call sees the edit."""
        session = limited(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        sid = session["session_id"]
        path = limited.gateway.settings.policy_path
        assert path is not None
        began_with = limited.gateway.policy.hash
        read = LivePolicy.current

        def read_then_edit(live: LivePolicy) -> Any:
            policy = read(live)
            path.write_text(
                LIMITED_POLICY.replace("tickets_pending_max: 1", "tickets_pending_max: 0")
            )
            return policy

        monkeypatch.setattr(LivePolicy, "current", read_then_edit)
        pending = limited(
            AGENT_1, "job:update-config", job_id="transform", session_id=sid, memory=256
        )
        monkeypatch.undo()
        assert pending["status"] == "pending_approval"
        [ticket] = limited.tickets(AGENT_1)
        assert ticket["policy_hash"] == began_with
        error = limited.error(
            AGENT_1, "job:update-config", job_id="transform", session_id=sid, memory=512
        )
        assert (error.code, error.details["limit"]) == ("THROTTLED", "tickets_pending_max")

    def test_reruns_per_hour_counts_every_rerun_request(self, limited, tmp_path):
        """The third rerun request within an hour is THROTTLED and says when to retry."""
        session = limited(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        sid = session["session_id"]
        for _ in range(2):
            limited(AGENT_1, "job:rerun", job_id="transform", session_id=sid, wait=True)
        error = limited.error(AGENT_1, "session:rerun", session_id=sid, strategy="failed-only")
        assert (error.code, error.details["limit"], error.details["used"]) == (
            "THROTTLED",
            "reruns_per_hour",
            2,
        )
        assert 3500 < error.details["retry_after_seconds"] <= 3600
        other = limited(AGENT_2, "job:rerun", job_id="transform", session_id=sid, wait=True)
        assert other["original_session_id"] == sid

    def test_claims_over_budget_are_throttled_renewals_are_not(self, limited, tmp_path):
        """claims_max bounds new claims; renewing a held one is always allowed."""
        first = limited(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        second = limited(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        limited(AGENT_1, "session:claim", session_id=first["session_id"])
        limited(AGENT_1, "session:claim", session_id=first["session_id"])
        error = limited.error(AGENT_1, "session:claim", session_id=second["session_id"])
        assert (error.code, error.details["limit"]) == ("THROTTLED", "claims_max")

    def test_policy_explain_shows_the_limits_and_what_is_used(self, limited, tmp_path):
        """An agent can read its own budgets and how much of each it has used."""
        session = limited(HUMAN, "pipeline:run", pipeline=etl_pipeline(tmp_path), wait=True)
        limited(AGENT_1, "session:claim", session_id=session["session_id"])
        explained = limited(AGENT_1, "policy:explain")
        assert explained["limits"] == {
            "reruns_per_hour": 2,
            "tickets_pending_max": 1,
            "claims_max": 1,
        }
        assert explained["usage"] == {
            "reruns_last_hour": 0,
            "tickets_pending": 0,
            "claims_held": 1,
        }
