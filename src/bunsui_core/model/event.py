"""State-change events: the feed behind MCP notifications, `events tail` and monitoring."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class EventKind(StrEnum):
    """What changed."""

    SESSION = "session"
    TICKET = "ticket"
    CLAIM = "claim"
    """A session's claim or escalation changed (status: claimed, released, escalated, ...)."""


class Event(BaseModel):
    """One status change, in the order the store committed it (`seq` is the cursor)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    seq: int = Field(description="Position in the feed; pass as after_seq to resume.")
    at: str = Field(description="When it was committed (UTC).")
    kind: EventKind = Field(description="session, ticket or claim (of a session).")
    id: str = Field(description="Session or ticket id.")
    status: str = Field(
        description="Its new status (for claims: claimed, renewed, taken_over, "
        "released, escalated, escalation_resolved)."
    )
    pipeline_id: str | None = Field(None, description="For sessions: the pipeline.")

    @property
    def uri(self) -> str:
        """The MCP resource that changed."""
        return f"bunsui://{'tickets' if self.kind is EventKind.TICKET else 'sessions'}/{self.id}"
