"""Session claims and escalations: several agents on one set of failures, a human in charge.

`session claim` takes a lease (renewed by claiming again, taken over once it lapses),
`session release` gives it back, `session claims` shows who works on what, `session escalate`
hands a failure to a person (agents then stay off it), `session resolve-escalation` hands it
back. The gateway enforces claims and escalations on every other write (actions/coordination).
"""

from __future__ import annotations

from pydantic import Field

from bunsui_core.actions._lookups import require_session
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.coordination import resolve_escalation
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import InvalidArgumentError, PermissionDeniedError
from bunsui_core.governance import budgets
from bunsui_core.governance.policy import ActorKind
from bunsui_core.model.claims import (
    DEFAULT_CLAIM_TTL_SECONDS,
    MAX_CLAIM_TTL_SECONDS,
    MIN_CLAIM_TTL_SECONDS,
    active_claim,
    claimed,
    escalated,
    escalated_error,
    released,
)
from bunsui_core.model.session import Session, utc_now
from bunsui_core.store.base import SessionFilter, update_session


class ClaimView(ActionOutput):
    """Who holds a session, until when, and whether it waits for a person."""

    session_id: str = Field(description="Session id (ses-...).")
    pipeline_id: str = Field(description="Pipeline the session ran.")
    status: str = Field(description="The session's status.")
    claimed_by: str | None = Field(description="Actor holding a live claim; null when nobody.")
    instance_id: str | None = Field(description="Process or connection holding it.")
    note: str | None = Field(description="What the holder said it is doing.")
    acquired_at: str | None = Field(description="When the holder first claimed it (UTC).")
    claim_expires_at: str | None = Field(description="When the claim lapses unless renewed.")
    taken_over_from: str | None = Field(description="Previous holder, if this was a takeover.")
    escalated: bool = Field(description="Handed to a human: agents may not change it.")
    escalation_reason: str | None = Field(description="Why it was escalated.")
    escalated_by: str | None = Field(description="Who escalated it.")
    escalated_at: str | None = Field(description="When it was escalated (UTC).")
    previous_holder: str | None = Field(
        None,
        description="Whose live claim this call replaced or released (a human's --force); "
        "kept in the call's audit entry.",
    )

    @classmethod
    def of(cls, session: Session, *, previous_holder: str | None = None) -> ClaimView:
        """The lease view of a session now (an expired claim shows as nobody's)."""
        claim = active_claim(session, utc_now())
        escalation = session.escalation
        return cls(
            previous_holder=previous_holder,
            session_id=session.session_id,
            pipeline_id=session.pipeline_id,
            status=str(session.status),
            claimed_by=claim.holder if claim else None,
            instance_id=claim.instance_id if claim else None,
            note=claim.note if claim else None,
            acquired_at=claim.acquired_at if claim else None,
            claim_expires_at=claim.expires_at if claim else None,
            taken_over_from=claim.taken_over_from if claim else None,
            escalated=escalation is not None,
            escalation_reason=escalation.reason if escalation else None,
            escalated_by=escalation.escalated_by if escalation else None,
            escalated_at=escalation.escalated_at if escalation else None,
        )


class ClaimInput(ActionInput):
    """Take or renew the lease on one session."""

    session_id: str = Field(max_length=64, description="Session id (ses-...).")
    ttl: int = Field(
        DEFAULT_CLAIM_TTL_SECONDS,
        ge=MIN_CLAIM_TTL_SECONDS,
        le=MAX_CLAIM_TTL_SECONDS,
        description="Seconds until the claim lapses unless renewed (default 900).",
    )
    note: str | None = Field(None, max_length=500, description="What you are doing about it.")
    force: bool = Field(
        False, description="Humans only: take over a claim another actor still holds."
    )


def _is_human(ctx: ActionContext) -> bool:
    return ctx.policy.kind_of(ctx.actor) is ActorKind.HUMAN


@REGISTRY.define(
    "session:claim",
    title="Claim a session",
    input_model=ClaimInput,
    output_model=ClaimView,
    effect=Effect.WRITE,
    cli_arguments=("session_id",),
    audited_outputs=("previous_holder",),
)
def claim(ctx: ActionContext, args: ClaimInput) -> ClaimView:
    """Take the lease on a session before working on it, so other agents leave it to you;
    claim again before it expires to renew it. Another actor's live claim is a CONFLICT naming
    the holder and expiry (pick another session); an expired claim is taken over. Escalated
    sessions cannot be claimed by agents (ESCALATED). Release it when done."""
    human = _is_human(ctx)
    if args.force and not human:
        raise PermissionDeniedError(
            "only a human may force a takeover of another actor's claim",
            details={"actor": ctx.actor, "session_id": args.session_id},
        )
    session = require_session(ctx.store, args.session_id)
    if session.escalation is not None and not human:
        raise escalated_error(session)
    current = active_claim(session, utc_now())
    if current is None or current.holder != ctx.actor:
        budgets.check_claims(ctx.store, ctx.policy.limits_of(ctx.actor), ctx.actor)
    replaced = _OtherHolder(ctx.actor)
    updated = update_session(
        ctx.store,
        args.session_id,
        lambda s: claimed(
            replaced.seen(s),
            actor=ctx.actor,
            instance_id=ctx.instance_id,
            ttl_seconds=args.ttl,
            note=args.note,
            now=utc_now(),
            force=args.force,
        ),
    )
    return ClaimView.of(updated, previous_holder=replaced.holder)


class ReleaseInput(ActionInput):
    """Give a lease back."""

    session_id: str = Field(max_length=64, description="Session id (ses-...).")
    force: bool = Field(False, description="Humans only: release another actor's live claim.")


@REGISTRY.define(
    "session:release",
    title="Release a session claim",
    input_model=ReleaseInput,
    output_model=ClaimView,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("session_id",),
    audited_outputs=("previous_holder",),
)
def release(ctx: ActionContext, args: ReleaseInput) -> ClaimView:
    """Give back your claim on a session (when recovered, or when you stop working on it).
    Releasing a session nobody holds is a no-op; another actor's claim is a CONFLICT."""
    if args.force and not _is_human(ctx):
        raise PermissionDeniedError(
            "only a human may release another actor's claim",
            details={"actor": ctx.actor, "session_id": args.session_id},
        )
    require_session(ctx.store, args.session_id)
    replaced = _OtherHolder(ctx.actor)
    updated = update_session(
        ctx.store,
        args.session_id,
        lambda s: released(replaced.seen(s), actor=ctx.actor, now=utc_now(), force=args.force),
    )
    return ClaimView.of(updated, previous_holder=replaced.holder)


class _OtherHolder:
    """Notes, on the version of the session a compare-and-set write starts from (the last
    try wins), whose live claim other than the caller's the write replaces."""

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.holder: str | None = None

    def seen(self, session: Session) -> Session:
        live = active_claim(session, utc_now())
        self.holder = live.holder if live is not None and live.holder != self.actor else None
        return session


class ClaimsInput(ActionInput):
    """Which leases to list."""

    claimed_by: str | None = Field(None, max_length=128, description="Only this holder's.")
    limit: int = Field(100, ge=1, le=1000, description="Most claims to return (newest first).")


class ClaimList(ActionOutput):
    """Live claims, newest session first."""

    claims: list[ClaimView] = Field(description="Sessions with a live claim.")


@REGISTRY.define(
    "session:claims",
    title="List session claims",
    input_model=ClaimsInput,
    output_model=ClaimList,
    effect=Effect.READ,
    idempotent=True,
)
def claims(ctx: ActionContext, args: ClaimsInput) -> ClaimList:
    """List who is working on which session right now (live claims only: holder, process,
    note, expiry). Use before picking a failure to work on."""
    page = ctx.store.list_sessions(
        SessionFilter(claimed=True, claimed_by=args.claimed_by), limit=args.limit
    )
    return ClaimList(claims=[ClaimView.of(s) for s in page.sessions])


class EscalateInput(ActionInput):
    """Hand a failure to a person."""

    session_id: str = Field(max_length=64, description="Session id (ses-...).")
    reason: str = Field(
        min_length=1, max_length=2000, description="Why a person must look at it, plainly."
    )


@REGISTRY.define(
    "session:escalate",
    title="Escalate a session to a human",
    input_model=EscalateInput,
    output_model=ClaimView,
    effect=Effect.WRITE,
    cli_arguments=("session_id",),
)
def escalate(ctx: ActionContext, args: EscalateInput) -> ClaimView:
    """Hand a failed session to a human when the flowchart says "Escalate to Human" (no safe
    automatic recovery, a code or data fix, a retry budget spent). Records the reason, who and
    when; any claim passes to nobody; agents' writes and claims on it are then refused with
    ESCALATED until a person resolves it. Another actor's live claim is a CONFLICT."""
    session = require_session(ctx.store, args.session_id)
    if session.escalation is not None:
        return ClaimView.of(session)
    now = utc_now()
    updated = update_session(
        ctx.store,
        args.session_id,
        lambda s: escalated(
            released(s, actor=ctx.actor, now=now), actor=ctx.actor, reason=args.reason, now=now
        ),
    )
    return ClaimView.of(updated)


class ResolveInput(ActionInput):
    """Hand an escalated session back."""

    session_id: str = Field(max_length=64, description="Session id (ses-...).")


@REGISTRY.define(
    "session:resolve-escalation",
    title="Resolve an escalation",
    input_model=ResolveInput,
    output_model=ClaimView,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("session_id",),
)
def resolve(ctx: ActionContext, args: ResolveInput) -> ClaimView:
    """A person says an escalated session is dealt with: agents may work on it again. (Any
    human write on the session resolves it too.)"""
    if not _is_human(ctx):
        raise PermissionDeniedError(
            "only a human resolves an escalation", details={"actor": ctx.actor}
        )
    session = require_session(ctx.store, args.session_id)
    if session.escalation is None:
        raise InvalidArgumentError(
            f"session {args.session_id} is not escalated",
            details={"session_id": args.session_id},
        )
    return ClaimView.of(resolve_escalation(ctx.store, args.session_id))
