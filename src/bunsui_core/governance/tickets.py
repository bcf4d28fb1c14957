"""Approval tickets: a request bound to its exact action and arguments, waiting for a human.

pending -> approved -> executing -> executed | failed; pending -> rejected | expired |
cancelled; approved -> expired (execution window passed). Terminal states are final; the
store changes a ticket only by compare-and-set on `version`, so two approvers racing cannot
both win and a ticket executes at most once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.governance.previews import Preview
from bunsui_core.model.session import new_id, utc_now
from bunsui_core.model.timestamps import shifted

APPROVAL_DEADLINE = timedelta(hours=24)
EXECUTION_WINDOW = timedelta(hours=1)


class TicketStatus(StrEnum):
    """Where a ticket is in its life."""

    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Terminal tickets never change again."""
        return not TICKET_TRANSITIONS[self]


TICKET_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.PENDING: frozenset(
        {
            TicketStatus.APPROVED,
            TicketStatus.REJECTED,
            TicketStatus.EXPIRED,
            TicketStatus.CANCELLED,
        }
    ),
    TicketStatus.APPROVED: frozenset({TicketStatus.EXECUTING, TicketStatus.EXPIRED}),
    TicketStatus.EXECUTING: frozenset({TicketStatus.EXECUTED, TicketStatus.FAILED}),
    TicketStatus.EXECUTED: frozenset(),
    TicketStatus.FAILED: frozenset(),
    TicketStatus.REJECTED: frozenset(),
    TicketStatus.EXPIRED: frozenset(),
    TicketStatus.CANCELLED: frozenset(),
}


def ticket_headline(ticket: Mapping[str, Any]) -> str:
    """A ticket's one line, the same in the CLI, the inbox and notifications (from its JSON
    form): the preview's summary, or the action and its arguments when it has none."""
    preview = ticket.get("preview")
    summary = preview.get("summary") if isinstance(preview, Mapping) else None
    if isinstance(summary, str) and summary:
        return summary
    return f"{ticket['action']} {json.dumps(ticket.get('arguments') or {}, ensure_ascii=False)}"


class Ticket(BaseModel):
    """One approval request and, once decided, its decision and result."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    ticket_id: str = Field(default_factory=lambda: new_id("tkt"))
    action: str
    arguments: dict[str, Any]
    arguments_hash: str
    requested_by: str
    rule: str = Field(description="The policy rule that required approval.")
    policy_hash: str
    status: TicketStatus = TicketStatus.PENDING
    created_at: str = Field(default_factory=utc_now)
    expires_at: str = Field(description="Approval deadline.")
    execute_by: str | None = Field(None, description="End of the execution window.")
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    correlation_id: str | None = None
    files: dict[str, str | None] = Field(
        default_factory=dict,
        description="Per file argument: sha256 of the file at request time (None: it named "
        "no file then). The ticket runs only on that exact content.",
    )
    preview: Preview | None = Field(
        None,
        description="What the action would do, computed when it was requested; execution "
        "computes it again and refuses (CONFLICT) if anything differs.",
    )
    preview_hash: str | None = Field(None, description="sha256 of the preview: what is bound.")
    version: int = 1

    @classmethod
    def request(
        cls,
        *,
        action: str,
        arguments: dict[str, Any],
        arguments_hash: str,
        requested_by: str,
        rule: str,
        policy_hash: str,
        correlation_id: str | None = None,
        files: dict[str, str | None] | None = None,
        preview: Preview | None = None,
    ) -> Ticket:
        """A new pending ticket with its approval deadline."""
        now = utc_now()
        return cls(
            action=action,
            arguments=arguments,
            arguments_hash=arguments_hash,
            requested_by=requested_by,
            rule=rule,
            policy_hash=policy_hash,
            created_at=now,
            expires_at=shifted(now, APPROVAL_DEADLINE),
            correlation_id=correlation_id,
            files=files or {},
            preview=preview,
            preview_hash=preview.digest if preview else None,
        )

    def overdue(self, now: str) -> bool:
        """Past the deadline of its current state (approval, or execution once approved)."""
        if self.status is TicketStatus.PENDING:
            return now >= self.expires_at
        if self.status is TicketStatus.APPROVED:
            return self.execute_by is not None and now >= self.execute_by
        return False

    @property
    def approve_command(self) -> str:
        """What a human runs to approve it."""
        return f"bunsui approval approve {self.ticket_id}"

    @property
    def resource_uri(self) -> str:
        """Where an MCP client can watch it."""
        return f"bunsui://tickets/{self.ticket_id}"
