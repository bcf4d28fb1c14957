"""Claims and escalations in every store: conditional writes, events in the same commit,
the lease filters of `list_sessions`, and the audit reads budgets count with."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bunsui_core.errors import ConflictError
from bunsui_core.governance.audit import AuditEvent, AuditResult
from bunsui_core.model.claims import claimed, escalated, released
from bunsui_core.model.session import Session, SessionStatus, utc_now
from bunsui_core.model.timestamps import shifted
from bunsui_core.store.base import SessionFilter, update_session
from tests.contract.test_store_contract import make_session


def claim_as(store, session_id: str, actor: str, *, ttl: float = 900) -> Session:
    """What `session claim` does, through the CAS helper."""
    return update_session(
        store,
        session_id,
        lambda s: claimed(
            s, actor=actor, instance_id="test", ttl_seconds=ttl, note=None, now=utc_now()
        ),
    )


def claim_events(store) -> list[tuple[str, str]]:
    return [(e.id, e.status) for e in store.list_events(limit=1000) if e.kind == "claim"]


class TestClaimWrites:
    def test_a_claim_is_stored_with_its_event(self, store):
        """The claim reads back from the store, and the feed says `claimed`."""
        store.create_session(make_session("ses-1", status=SessionStatus.FAILED))
        claim_as(store, "ses-1", "ai-agent-1")
        stored = store.get_session("ses-1")
        assert stored.claim is not None
        assert stored.claim.holder == "ai-agent-1"
        assert claim_events(store) == [("ses-1", "claimed")]

    def test_another_holder_is_a_conflict_and_nothing_changes(self, store):
        """A second actor's claim on a live lease raises CONFLICT naming the holder."""
        store.create_session(make_session("ses-1", status=SessionStatus.FAILED))
        first = claim_as(store, "ses-1", "ai-agent-1")
        with pytest.raises(ConflictError) as caught:
            claim_as(store, "ses-1", "ai-agent-2")
        assert caught.value.details["claimed_by"] == "ai-agent-1"
        assert store.get_session("ses-1") == first

    def test_release_and_escalation_are_events_too(self, store):
        """Release, escalation and its resolution each append one event."""
        store.create_session(make_session("ses-1", status=SessionStatus.FAILED))
        claim_as(store, "ses-1", "ai-agent-1")
        now = utc_now()
        update_session(store, "ses-1", lambda s: released(s, actor="ai-agent-1", now=now))
        update_session(
            store, "ses-1", lambda s: escalated(s, actor="ai-agent-1", reason="data", now=now)
        )
        update_session(store, "ses-1", lambda s: s.model_copy(update={"escalation": None}))
        assert [status for _, status in claim_events(store)] == [
            "claimed",
            "released",
            "escalated",
            "escalation_resolved",
        ]

    def test_racing_claimants_exactly_one_wins(self, store, request):
        """Twenty threads claim one session at once: one holds it, nineteen get CONFLICT."""
        if "dynamodb" in request.node.name:
            pytest.skip(
                "moto's in-process DynamoDB is not thread-safe; its conditional write is "
                "pinned by test_another_holder_is_a_conflict_and_nothing_changes"
            )
        store.create_session(make_session("ses-1", status=SessionStatus.FAILED))
        outcomes: list[str] = []
        start = threading.Barrier(20)

        def contend(n: int) -> None:
            start.wait()
            try:
                claim_as(store, "ses-1", f"ai-agent-{n}")
                outcomes.append("won")
            except ConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=contend, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 19 + ["won"]
        assert [status for _, status in claim_events(store)] == ["claimed"]


class TestLeaseFilters:
    def test_claimed_escalated_and_holder_filters(self, store):
        """Each lease filter narrows the list as documented; expired claims count as free."""
        for n in range(4):
            store.create_session(
                make_session(
                    f"ses-{n}",
                    status=SessionStatus.FAILED,
                    created_at=f"2024-05-0{n + 1}T00:00:00.000000Z",
                )
            )
        claim_as(store, "ses-0", "ai-agent-1")
        claim_as(store, "ses-1", "ai-agent-2")
        claim_as(store, "ses-2", "ai-agent-1", ttl=-1)  # lapsed at once
        now = utc_now()
        update_session(
            store, "ses-3", lambda s: escalated(s, actor="ai-agent-2", reason="x", now=now)
        )

        def listed(**fields: object) -> list[str]:
            page = store.list_sessions(SessionFilter(**fields), limit=10)
            return sorted(s.session_id for s in page.sessions)

        assert listed(claimed=True) == ["ses-0", "ses-1"]
        assert listed(claimed=False) == ["ses-2", "ses-3"]
        assert listed(claimed_by="ai-agent-1") == ["ses-0"]
        assert listed(escalated=True) == ["ses-3"]
        assert listed(escalated=False, claimed=False) == ["ses-2"]


class TestRecentAudit:
    def test_newest_first_only_this_actor_and_action_after_since(self, store):
        """What a budget counts: one actor's entries for one action after a moment."""
        since = utc_now()
        for actor, action in [
            ("a", "job:rerun"),
            ("b", "job:rerun"),
            ("a", "job:list"),
            ("a", "job:rerun"),
        ]:
            store.append_audit(
                AuditEvent(
                    actor=actor, action=action, result=AuditResult.ALLOWED, arguments_hash="h"
                )
            )
        found = store.recent_audit(actor="a", action="job:rerun", since=since, limit=10)
        assert [e.seq for e in found] == [4, 1]
        assert (
            store.recent_audit(
                actor="a",
                action="job:rerun",
                since=shifted(utc_now(), timedelta(seconds=1)),
                limit=10,
            )
            == []
        )
        assert len(store.recent_audit(actor="a", action="job:rerun", since=since, limit=1)) == 1
