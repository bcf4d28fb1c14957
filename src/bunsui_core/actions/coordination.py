"""How the gateway keeps several actors off each other's sessions: claims and escalations.

Every write that names a session (directly, or through a recovery plan) is checked here before
it runs or becomes a ticket, whatever adapter it came from; an approved ticket is checked
again when it executes, as its requester, so a ticket runs only while its requester's claim
holds or nobody's does.
"""

from __future__ import annotations

from pydantic import BaseModel

from bunsui_core.model.claims import escalated_error, held_by_other
from bunsui_core.model.session import Session, utc_now
from bunsui_core.store.base import Store, update_session

LEASE_ACTIONS = frozenset(
    {
        "session:claim",
        "session:release",
        "session:escalate",
        "session:resolve-escalation",
    }
)
"""Actions that change claims and escalations themselves and check them in their handler."""


def target_session(store: Store, args: BaseModel) -> Session | None:
    """The session a call changes: its `session_id`, or the session of its `plan_id`."""
    session_id = getattr(args, "session_id", None)
    plan_id = getattr(args, "plan_id", None)
    if not isinstance(session_id, str) and isinstance(plan_id, str):
        plan = store.get_recovery_plan(plan_id)
        session_id = plan.session_id if plan is not None else None
    return store.get_session(session_id) if isinstance(session_id, str) else None


def check_lease(session: Session, actor: str, *, human: bool) -> None:
    """ESCALATED for an agent on an escalated session; CONFLICT naming the holder when
    another actor's claim holds it."""
    if session.escalation is not None and not human:
        raise escalated_error(session)
    conflict = held_by_other(session, actor, utc_now())
    if conflict is not None:
        raise conflict


def resolve_escalation(store: Store, session_id: str) -> Session:
    """Clear an escalation: a person has acted on the session (or said it is resolved)."""
    return update_session(store, session_id, lambda s: s.model_copy(update={"escalation": None}))
