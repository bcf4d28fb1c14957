"""The event feed: session and ticket status changes, resumable by cursor."""

from __future__ import annotations

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.model.event import Event


class TailInput(ActionInput):
    """Where to read the feed from."""

    after_seq: int | None = Field(
        None,
        ge=0,
        description="Events after this cursor (a previous next_after_seq); "
        "omitted: the most recent `limit` events.",
    )
    limit: int = Field(50, ge=1, le=1000, description="Most events to return.")


class EventPage(ActionOutput):
    """Events, oldest first, and the cursor to continue from."""

    events: list[Event] = Field(description="Status changes, oldest first.")
    next_after_seq: int = Field(description="Pass as after_seq to get what happens next.")


@REGISTRY.define(
    "events:tail",
    title="Read the event feed",
    input_model=TailInput,
    output_model=EventPage,
    effect=Effect.READ,
    idempotent=True,
)
def tail(ctx: ActionContext, args: TailInput) -> EventPage:
    """Session, ticket and claim status changes (queued, running, completed, failed, ...;
    pending, approved, executed, ...; claimed, taken_over, ...), oldest first, each with a
    seq. Pass next_after_seq back as after_seq to follow the feed without missing or
    repeating an event."""
    store = ctx.store
    after = args.after_seq
    if after is None:
        after = max(0, store.last_event_seq() - args.limit)
    events = store.list_events(after_seq=after, limit=args.limit)
    return EventPage(events=events, next_after_seq=events[-1].seq if events else after)
