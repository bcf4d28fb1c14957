"""Session actions: list, describe, cancel."""

from __future__ import annotations

import functools
from collections.abc import Callable

from pydantic import Field

from bunsui_core.actions._lookups import job_order, require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.actions.session_views import SessionDetail, SessionSummary
from bunsui_core.governance.previews import Preview
from bunsui_core.model.session import Session, SessionStatus, check_transition, utc_now
from bunsui_core.store.base import SessionFilter, update_session

ACTIVE = (SessionStatus.RUNNING, SessionStatus.QUEUED)


def up_to_date(ctx: ActionContext) -> Callable[[list[Session]], list[Session]]:
    """Marks sessions whose runner died failed, and returns what brings sessions read after
    that up to date (aws executions folded in). Both concern active sessions only, so while
    none is active (or the store is read-only) the engine is not even imported: listing
    past runs stays a store read."""
    if ctx.store.read_only or not any(
        ctx.store.list_sessions(SessionFilter(status=status), limit=1).sessions for status in ACTIVE
    ):
        return lambda sessions: sessions
    from bunsui_core.engine.dispatch import refresh  # noqa: PLC0415 - only when needed
    from bunsui_core.engine.liveness import reap_lost_runners  # noqa: PLC0415

    reap_lost_runners(ctx.store)
    return functools.partial(refresh, ctx.store, ctx.settings)


class SessionListInput(ActionInput):
    """Filters and paging for `session list`."""

    filter: SessionFilter = Field(
        default_factory=SessionFilter,
        description="status, pipeline_id, created_after, created_before.",
    )
    limit: int = Field(50, ge=1, le=1000, description="Most sessions to return (newest first).")
    cursor: str | None = Field(None, description="next_cursor of the previous page.")


class SessionList(ActionOutput):
    """A page of sessions, newest first."""

    sessions: list[SessionSummary] = Field(description="Matching sessions, newest first.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at end.")


@REGISTRY.define(
    "session:list",
    title="List sessions",
    input_model=SessionListInput,
    output_model=SessionList,
    effect=Effect.READ,
    idempotent=True,
)
def list_sessions(ctx: ActionContext, args: SessionListInput) -> SessionList:
    """List pipeline runs (sessions), newest first. Filter by status (e.g. failed),
    pipeline_id, created_after / created_before; page with limit and cursor. Each entry
    names the failed jobs and a one-line error summary; use error analysis for causes."""
    refreshed = up_to_date(ctx)
    page = ctx.store.list_sessions(args.filter, limit=args.limit, cursor=args.cursor)
    now = utc_now()
    return SessionList(
        sessions=[SessionSummary.of(s, now) for s in refreshed(page.sessions)],
        next_cursor=page.next_cursor,
    )


class SessionIdInput(ActionInput):
    """One session."""

    session_id: str = Field(description="Session id (ses-...).")


def session_detail(ctx: ActionContext, session: Session) -> SessionDetail:
    """A session with its jobs in pipeline order."""
    return SessionDetail.load(
        ctx.store, session, job_order(session_pipeline(ctx.store, session).pipeline)
    )


@REGISTRY.define(
    "session:describe",
    title="Describe a session",
    input_model=SessionIdInput,
    output_model=SessionDetail,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("session_id",),
)
def describe(ctx: ActionContext, args: SessionIdInput) -> SessionDetail:
    """Show one session: status, timing, the exact pipeline version, every job's status and
    the session's error summary."""
    refreshed = up_to_date(ctx)
    [session] = refreshed([require_session(ctx.store, args.session_id)])
    return session_detail(ctx, session)


def preview_cancel(ctx: ActionContext, args: SessionIdInput) -> Preview:
    """The session it stops (NOT_FOUND at request time when there is none). Its status is
    left out on purpose: a queued session that starts running is still the one approved."""
    session = require_session(ctx.store, args.session_id)
    return Preview(
        summary=f"session:cancel {session.session_id} ({session.pipeline_id} version "
        f"{session.pipeline_version}): stops it and every command it runs",
        effect={
            "session_id": session.session_id,
            "pipeline_id": session.pipeline_id,
            "pipeline_version": session.pipeline_version,
        },
    )


@REGISTRY.define(
    "session:cancel",
    title="Cancel a session",
    input_model=SessionIdInput,
    output_model=SessionDetail,
    effect=Effect.WRITE,
    destructive=True,
    idempotent=True,
    cli_arguments=("session_id",),
    preview=preview_cancel,
)
def cancel(ctx: ActionContext, args: SessionIdInput) -> SessionDetail:
    """Stop a queued or running session: its runner kills every running command and marks
    unfinished jobs cancelled. Cancelling a cancelled session is a no-op; a finished one
    cannot be cancelled (INVALID_TRANSITION)."""

    def cancelled(current: Session) -> Session:
        if current.status is SessionStatus.CANCELLED:
            return current
        check_transition(current.session_id, current.status, SessionStatus.CANCELLED)
        return current.model_copy(
            update={"status": SessionStatus.CANCELLED, "finished_at": utc_now()}
        )

    session = require_session(ctx.store, args.session_id)
    if session.status in ACTIVE:
        from bunsui_core.engine.dispatch import cancel_execution  # noqa: PLC0415

        stopped = cancel_execution(ctx.store, ctx.settings, session)
        if stopped is not None:
            return session_detail(ctx, stopped)
    return session_detail(ctx, update_session(ctx.store, args.session_id, cancelled))


@REGISTRY.define(
    "session:sync",
    title="Sync a session with its execution",
    input_model=SessionIdInput,
    output_model=SessionDetail,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("session_id",),
)
def sync(ctx: ActionContext, args: SessionIdInput) -> SessionDetail:
    """Fold an aws session's Step Functions execution history into its job runs, operation
    runs and error records now, then show it (describe and list do this too). On the local
    backend the runner records as it goes, so this is describe."""
    from bunsui_core.engine.dispatch import refresh  # noqa: PLC0415 - the engine's own read

    [session] = refresh(ctx.store, ctx.settings, [require_session(ctx.store, args.session_id)])
    return session_detail(ctx, session)
