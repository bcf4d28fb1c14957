"""Per-actor budgets from the policy's `limits:`: reruns per hour, pending tickets, claims.

An agent that loops (retrying a rerun, opening ticket after ticket, claiming every failure)
is stopped with THROTTLED and told when to try again, before it floods the approvers. The
counts come from what the store already holds (audit entries, tickets, claims), so every
adapter and every process sees the same budget.
"""

from __future__ import annotations

import math
from datetime import timedelta

from bunsui_core.errors import ThrottledError
from bunsui_core.governance.audit import AuditResult
from bunsui_core.governance.policy import Limits
from bunsui_core.model.session import Session
from bunsui_core.model.timestamps import seconds_between, shifted, utc_now
from bunsui_core.store.base import SessionFilter, Store

RERUN_ACTIONS = ("job:rerun", "recovery:execute", "session:rerun", "session:rerun-many")
"""Actions a `reruns_per_hour` budget counts (each request, whether it ran or became a ticket)."""

COUNTED_RESULTS = frozenset({AuditResult.ALLOWED, AuditResult.PENDING_APPROVAL})
WINDOW = timedelta(hours=1)


def _throttled(limit: str, allowed: int, used: int, retry_after: float) -> ThrottledError:
    return ThrottledError(
        f"over budget: {limit} is {allowed} and {used} are in use; retry in "
        f"{math.ceil(retry_after)} s",
        details={
            "limit": limit,
            "allowed": allowed,
            "used": used,
            "retry_after_seconds": max(1, math.ceil(retry_after)),
        },
    )


def rerun_times(store: Store, actor: str, *, now: str, limit: int) -> list[str]:
    """When the actor asked for reruns in the last hour, oldest first (at most `limit` per
    action, which is all a budget of `limit - 1` needs)."""
    since = shifted(now, -WINDOW)
    return sorted(
        entry.timestamp
        for action in RERUN_ACTIONS
        for entry in store.recent_audit(actor=actor, action=action, since=since, limit=limit)
        if entry.result in COUNTED_RESULTS
    )


def check_reruns(store: Store, limits: Limits, actor: str) -> None:
    """THROTTLED when the actor already asked for `reruns_per_hour` reruns in the last hour."""
    allowed = limits.reruns_per_hour
    if allowed is None:
        return
    now = utc_now()
    times = rerun_times(store, actor, now=now, limit=allowed + 1)
    if len(times) >= allowed:
        frees_at = shifted(times[len(times) - allowed], WINDOW) if allowed else now
        retry_after = seconds_between(now, frees_at) if allowed else WINDOW.total_seconds()
        raise _throttled("reruns_per_hour", allowed, len(times), retry_after)


def check_pending_tickets(store: Store, limits: Limits, actor: str) -> None:
    """THROTTLED when the actor already has `tickets_pending_max` tickets waiting."""
    allowed = limits.tickets_pending_max
    if allowed is None:
        return
    pending = store.list_tickets(status="pending", requested_by=actor, limit=allowed + 1)
    if len(pending) >= allowed:
        now = utc_now()
        first_expiry = min((t.expires_at for t in pending), default=now)
        raise _throttled(
            "tickets_pending_max", allowed, len(pending), seconds_between(now, first_expiry)
        )


def held_claims(store: Store, actor: str, *, limit: int) -> list[Session]:
    """Sessions whose live claim the actor holds (at most `limit`)."""
    page = store.list_sessions(SessionFilter(claimed=True, claimed_by=actor), limit=limit)
    return page.sessions


def check_claims(store: Store, limits: Limits, actor: str) -> None:
    """THROTTLED when the actor already holds `claims_max` live claims (renewals are free:
    call this only for a session the actor does not hold)."""
    allowed = limits.claims_max
    if allowed is None:
        return
    held = held_claims(store, actor, limit=allowed + 1)
    if len(held) >= allowed:
        now = utc_now()
        first_expiry = min((s.claim.expires_at for s in held if s.claim), default=now)
        raise _throttled("claims_max", allowed, len(held), seconds_between(now, first_expiry))
