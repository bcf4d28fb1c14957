"""Notices: what a feed event means to an approver, as a one-line text and a JSON body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.governance.tickets import Ticket, TicketStatus, ticket_headline
from bunsui_core.model.event import Event
from bunsui_core.notify.settings import NoticeKind, WebhookFormat

DECIDED = frozenset(
    {TicketStatus.EXECUTED, TicketStatus.FAILED, TicketStatus.REJECTED, TicketStatus.CANCELLED}
)
"""A ticket counts as decided once its outcome is known (approval is followed at once by the
execution, so `approved` alone would be a second, emptier message)."""

ESCALATION_KIND = "claim"
"""Feed kind of claims; a claim whose status is `escalated` stops agents until a human acts."""


def notice_kind(event: Event) -> NoticeKind | None:
    """Which notice an event is, or None when approvers need not hear of it."""
    kind, status = str(event.kind), event.status
    if kind == "ticket":
        if status == TicketStatus.PENDING:
            return NoticeKind.TICKET_CREATED
        if status == TicketStatus.EXPIRED:
            return NoticeKind.TICKET_EXPIRED
        return NoticeKind.TICKET_DECIDED if status in DECIDED else None
    if kind == "session" and status == "failed":
        return NoticeKind.SESSION_FAILED
    if kind == ESCALATION_KIND and status == "escalated":
        return NoticeKind.SESSION_ESCALATED
    return None


def slack_escaped(text: str) -> str:
    """Text Slack shows as written: `<!channel>` or `<url|label>` from an agent's arguments
    must not ping everyone or disguise a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ticket_path(ticket_id: str) -> str:
    """Where the approver's inbox shows a ticket."""
    return f"/approvals/tickets/{ticket_id}"


class Notice(BaseModel):
    """One message for every target subscribed to its kind."""

    model_config = ConfigDict(extra="forbid")

    kind: NoticeKind
    id: str = Field(description="Ticket, session or claim id.")
    status: str
    at: str
    text: str = Field(description="One line for a chat channel, ending with the link.")
    link: str | None = None
    ticket: dict[str, Any] | None = Field(None, description="The ticket's summary fields.")

    def body(self, form: WebhookFormat) -> dict[str, Any]:
        """The JSON a target of this format receives."""
        if form is WebhookFormat.SLACK:
            return {"text": slack_escaped(self.text)}
        return self.model_dump(mode="json")


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """The fields of a ticket a message carries (never its full arguments: they can be long
    and they are on the ticket's page)."""
    return {
        "ticket_id": ticket.ticket_id,
        "action": ticket.action,
        "summary": ticket_headline(ticket.model_dump(mode="json")),
        "requested_by": ticket.requested_by,
        "rule": ticket.rule,
        "status": str(ticket.status),
        "expires_at": ticket.expires_at,
        "decided_by": ticket.decided_by,
        "reason": ticket.reason,
        "error_code": (ticket.error or {}).get("code"),
    }


def _ticket_text(kind: NoticeKind, ticket: Ticket) -> str:
    what = ticket_headline(ticket.model_dump(mode="json"))
    if kind is NoticeKind.TICKET_CREATED:
        return f"{ticket.requested_by} asks to run {what} ({ticket.ticket_id}; rule {ticket.rule})"
    if kind is NoticeKind.TICKET_EXPIRED:
        return f"Ticket {ticket.ticket_id} expired before it ran: {what}"
    decided = f"{ticket.status} by {ticket.decided_by or '?'}"
    if ticket.reason:
        decided += f" ({ticket.reason})"
    if ticket.error:
        decided += f": {ticket.error.get('code', 'error')}"
    return f"Ticket {ticket.ticket_id} {decided}: {what}"


def build_notice(
    event: Event,
    kind: NoticeKind,
    ticket: Ticket | None,
    link_base: str | None,
    detail: str | None = None,
) -> Notice:
    """The notice for an event (with its ticket, when it is about one; `detail` says who
    escalated a session and why)."""
    if ticket is not None:
        link = f"{link_base.rstrip('/')}{ticket_path(ticket.ticket_id)}" if link_base else None
        text = _ticket_text(kind, ticket)
        summary: dict[str, Any] | None = ticket_summary(ticket)
    else:
        link = f"{link_base.rstrip('/')}/approvals" if link_base else None
        pipeline = f" of pipeline {event.pipeline_id}" if event.pipeline_id else ""
        text = f"Session {event.id}{pipeline} failed"
        if kind is NoticeKind.SESSION_ESCALATED:
            why = f" {detail}" if detail else ""
            text = f"Session {event.id}{pipeline} escalated{why}; agents wait for a human"
        summary = None
    return Notice(
        kind=kind,
        id=event.id,
        status=event.status,
        at=event.at,
        text=f"{text} {link}" if link else text,
        link=link,
        ticket=summary,
    )
