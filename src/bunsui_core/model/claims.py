"""Who is working on a session: leases (claims) with expiry, and escalations to a person.

A claim is a lease in the Kubernetes Lease / DynamoDB lock client sense: it names a holder and
an expiry, the holder renews it by claiming again, and anyone may take over an expired one.
Both live on the session record, so every change is the store's compare-and-set on the
session's version: two agents racing for one claim cannot both win, in either store.
The functions here are pure (time is an argument) so the rules are tested without a store.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.errors import ConflictError, ErrorCode
from bunsui_core.model.timestamps import shifted

if TYPE_CHECKING:
    from bunsui_core.model.session import Session

DEFAULT_CLAIM_TTL_SECONDS = 15 * 60
MIN_CLAIM_TTL_SECONDS = 5
MAX_CLAIM_TTL_SECONDS = 24 * 3600


class SessionClaim(BaseModel):
    """A lease on a session: only its holder may change the session while it holds."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    holder: str = Field(description="Actor holding the claim.")
    instance_id: str = Field(description="The process or MCP connection that claimed it.")
    note: str | None = Field(None, description="What the holder is doing.")
    acquired_at: str = Field(description="When this holder first claimed it (UTC).")
    expires_at: str = Field(description="When the claim lapses unless renewed (UTC).")
    taken_over_from: str | None = Field(
        None, description="The previous holder, when this claim replaced someone else's."
    )

    def active(self, now: str) -> bool:
        """Whether the lease still holds at `now` (ISO 8601 UTC text compares as time)."""
        return self.expires_at > now


class Escalation(BaseModel):
    """A failure handed to a person: agents stop touching the session until it is resolved."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    reason: str = Field(description="Why the agent gave up, in its words.")
    escalated_by: str = Field(description="Who escalated.")
    escalated_at: str = Field(description="When (UTC).")


class ClaimEvent(StrEnum):
    """What a claim or escalation change means in the event feed."""

    CLAIMED = "claimed"
    RENEWED = "renewed"
    TAKEN_OVER = "taken_over"
    RELEASED = "released"
    ESCALATED = "escalated"
    ESCALATION_RESOLVED = "escalation_resolved"


class EscalatedError(ConflictError):
    """An agent's write or claim on a session a person must look at first."""

    default_code = ErrorCode.ESCALATED


def active_claim(session: Session, now: str) -> SessionClaim | None:
    """The session's claim if it still holds at `now`."""
    claim = session.claim
    return claim if claim is not None and claim.active(now) else None


def held_by_other(session: Session, actor: str, now: str) -> ConflictError | None:
    """CONFLICT naming the holder when someone else's claim holds, else None."""
    claim = active_claim(session, now)
    if claim is None or claim.holder == actor:
        return None
    return ConflictError(
        f"session {session.session_id} is claimed by {claim.holder} until {claim.expires_at}",
        details={
            "session_id": session.session_id,
            "claimed_by": claim.holder,
            "claim_expires_at": claim.expires_at,
            "instance_id": claim.instance_id,
            "note": claim.note,
        },
    )


def escalated_error(session: Session) -> EscalatedError:
    """ESCALATED naming who handed the session to a person and why."""
    escalation = session.escalation
    details = {"session_id": session.session_id}
    if escalation is not None:
        details |= escalation.model_dump()
    return EscalatedError(
        f"session {session.session_id} is escalated to a human; agents may not change it "
        "until a person resolves the escalation",
        details=details,
    )


def claimed(
    session: Session,
    *,
    actor: str,
    instance_id: str,
    ttl_seconds: float,
    note: str | None,
    now: str,
    force: bool = False,
) -> Session:
    """The session with `actor`'s claim: new, renewed, or taking over an expired (or, with
    `force`, a live) claim. CONFLICT when another holder's claim is live and not forced."""
    conflict = None if force else held_by_other(session, actor, now)
    if conflict is not None:
        raise conflict
    previous = session.claim
    live = active_claim(session, now)
    if live is not None and live.holder == actor:
        claim = live.model_copy(
            update={
                "instance_id": instance_id,
                "note": note if note is not None else live.note,
                "expires_at": shifted(now, timedelta(seconds=ttl_seconds)),
            }
        )
    else:
        claim = SessionClaim(
            holder=actor,
            instance_id=instance_id,
            note=note,
            acquired_at=now,
            expires_at=shifted(now, timedelta(seconds=ttl_seconds)),
            taken_over_from=(
                previous.holder if previous is not None and previous.holder != actor else None
            ),
        )
    return session.model_copy(update={"claim": claim})


def inherited_claim(original: Session, requester: str | None, now: str) -> SessionClaim | None:
    """The claim a rerun starts with: its requester's live claim on the original session, so
    from its first moment no other agent picks up the rerun (or its failure)."""
    claim = active_claim(original, now)
    return claim if claim is not None and claim.holder == requester else None


def released(session: Session, *, actor: str, now: str, force: bool = False) -> Session:
    """The session without `actor`'s claim; releasing someone else's live claim is a CONFLICT
    unless forced; releasing nothing (or an expired claim) clears it."""
    conflict = held_by_other(session, actor, now)
    if conflict is not None and not force:
        raise conflict
    return session.model_copy(update={"claim": None})


def escalated(session: Session, *, actor: str, reason: str, now: str) -> Session:
    """The session handed to a person: escalation recorded, the claim passes to nobody."""
    return session.model_copy(
        update={
            "claim": None,
            "escalation": Escalation(reason=reason, escalated_by=actor, escalated_at=now),
        }
    )


class LeaseState(NamedTuple):
    """What the stores index of a session's claim and escalation: enough to list claims and
    escalations from an index, and to say what a write changed without re-reading the body."""

    holder: str | None
    expires_at: str | None
    escalated: bool

    @classmethod
    def of(cls, session: Session) -> LeaseState:
        """The indexed part of a session's claim and escalation."""
        claim = session.claim
        return cls(
            claim.holder if claim else None,
            claim.expires_at if claim else None,
            session.escalation is not None,
        )


def claim_events(before: LeaseState, after: Session) -> list[str]:
    """What changed in claims and escalations from the stored state to `after`, as event
    statuses for the feed (`claimed`, `released`, `escalated`, ...)."""
    events: list[str] = []
    new = after.claim
    if new is not None and before.holder != new.holder:
        events.append(ClaimEvent.TAKEN_OVER if new.taken_over_from else ClaimEvent.CLAIMED)
    elif new is not None and new.expires_at > (before.expires_at or ""):
        events.append(ClaimEvent.RENEWED)
    elif new is None and before.holder is not None:
        events.append(ClaimEvent.RELEASED)
    if not before.escalated and after.escalation is not None:
        events.append(ClaimEvent.ESCALATED)
    elif before.escalated and after.escalation is None:
        events.append(ClaimEvent.ESCALATION_RESOLVED)
    return events
