"""The life of a ticket in the store: request, decide, execute once, finish.

Every change is a compare-and-set, so with many approvers (or processes) racing, exactly one
wins each step and the others get a clear CONFLICT naming the ticket's state.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.config import default_home
from bunsui_core.errors import (
    ConflictError,
    ErrorCode,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    TicketError,
)
from bunsui_core.governance import budgets
from bunsui_core.governance.canonical import binding_hash
from bunsui_core.governance.policy import ActorKind, Limits
from bunsui_core.governance.previews import Preview
from bunsui_core.governance.tickets import EXECUTION_WINDOW, Ticket, TicketStatus
from bunsui_core.model.session import utc_now
from bunsui_core.model.timestamps import shifted
from bunsui_core.store.base import Store

REQUEST_ATTEMPTS = 5
FINISH_ATTEMPTS = 3
DECISIONS = frozenset({TicketStatus.APPROVED, TicketStatus.REJECTED, TicketStatus.CANCELLED})


class PendingApproval(BaseModel):
    """What an approval-required call returns instead of acting."""

    model_config = ConfigDict(defer_build=True)

    status: str = Field("pending_approval", description="Always pending_approval.")
    ticket_id: str = Field(description="The ticket (tkt-...).")
    action: str = Field(description="The action that will run once approved.")
    arguments: dict[str, Any] = Field(description="Its exact arguments.")
    requested_by: str = Field(description="Who asked.")
    rule: str = Field(description="The policy rule that requires approval.")
    expires_at: str = Field(description="Approval deadline (UTC).")
    approve_command: str = Field(description="What a human runs to approve it.")
    resource_uri: str = Field(description="Watch the ticket here (MCP resource).")
    created: bool = Field(description="False when an identical pending request existed.")
    preview: Preview | None = Field(
        None, description="What it will do once approved: the effect the human approves."
    )
    preview_hash: str | None = Field(None, description="sha256 of the preview, bound.")

    @classmethod
    def of(cls, ticket: Ticket, *, created: bool, home: Path | None = None) -> PendingApproval:
        """The ticket as the caller sees it; outside the default home, the approve command
        names the home, so the approver acts on this ticket and not on another store's."""
        command = ticket.approve_command
        if home is not None and home != default_home().expanduser().resolve():
            command = command.replace("bunsui ", f"bunsui --home {shlex.quote(str(home))} ", 1)
        return cls(
            ticket_id=ticket.ticket_id,
            action=ticket.action,
            arguments=ticket.arguments,
            requested_by=ticket.requested_by,
            rule=ticket.rule,
            expires_at=ticket.expires_at,
            approve_command=command,
            resource_uri=ticket.resource_uri,
            created=created,
            preview=ticket.preview,
            preview_hash=ticket.preview_hash,
        )


def resolve_files(arguments: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Arguments with the paths of existing files made absolute: the approver's process runs
    elsewhere, and must read the same file the request named."""
    bound = dict(arguments)
    for field in fields:
        value = bound.get(field)
        if value is None:
            continue
        try:
            path = Path(str(value))
            if path.is_file() or path.is_dir():  # a directory: a project
                bound[field] = str(path.resolve())
        except (OSError, ValueError):
            continue  # not a usable path: the action reports it
    return bound


def file_digests(
    arguments: dict[str, Any], fields: tuple[str, ...], preview: Preview | None
) -> dict[str, str | None]:
    """Per file argument, the sha256 its preview was computed from (None: it named no file),
    so the ticket shows which content it binds; the preview's hash is what binds it."""
    seen = preview.files if preview else {}
    return {
        field: seen.get(str(arguments[field]))
        for field in fields
        if arguments.get(field) is not None
    }


def request_digest(
    arguments: dict[str, Any], files: dict[str, str | None] | None, preview: Preview | None
) -> str:
    """What makes two requests identical: the arguments, the bound files' contents and the
    effect they would have."""
    return binding_hash(
        {
            "arguments": arguments,
            "files": files or {},
            "preview": preview.digest if preview else None,
        }
    )


def request_ticket(
    store: Store,
    *,
    action: str,
    arguments: dict[str, Any],
    requested_by: str,
    rule: str,
    policy_hash: str,
    correlation_id: str | None,
    files: dict[str, str | None] | None = None,
    preview: Preview | None = None,
    limits: Limits | None = None,
) -> tuple[Ticket, bool]:
    """The pending ticket for this exact request and effect: an existing one, or a new one
    (the same arguments with a different effect, e.g. edited file content, are a new request).
    Only a new ticket counts against the requester's `tickets_pending_max` (THROTTLED)."""
    digest = request_digest(arguments, files, preview)
    for _ in range(REQUEST_ATTEMPTS):
        existing = store.find_pending_ticket(action, digest, requested_by)
        if existing is not None and existing.overdue(utc_now()):
            _expire(store, existing)
            existing = None
        if existing is not None:
            return existing, False
        if limits is not None:
            budgets.check_pending_tickets(store, limits, requested_by)
        ticket = Ticket.request(
            action=action,
            arguments=arguments,
            arguments_hash=digest,
            requested_by=requested_by,
            rule=rule,
            policy_hash=policy_hash,
            correlation_id=correlation_id,
            files=files,
            preview=preview,
        )
        try:
            return store.create_ticket(ticket), True
        except ConflictError:
            continue  # an identical request won the race: return its ticket
    raise ConflictError(f"could not create a ticket for {action}; retry")


def current_ticket(store: Store, ticket_id: str) -> Ticket:
    """The ticket, expired first if its deadline passed (when the store may be written)."""
    ticket = store.get_ticket(ticket_id)
    if ticket is None:
        raise NotFoundError(f"ticket {ticket_id} not found", details={"ticket_id": ticket_id})
    if ticket.overdue(utc_now()):
        if store.read_only:
            return ticket.model_copy(update={"status": TicketStatus.EXPIRED})
        ticket = _expire(store, ticket)
    return ticket


def _expire(store: Store, ticket: Ticket) -> Ticket:
    try:
        return store.update_ticket(
            ticket.model_copy(update={"status": TicketStatus.EXPIRED}),
            expected_version=ticket.version,
        )
    except ConflictError:
        return store.get_ticket(ticket.ticket_id) or ticket


def decide(
    store: Store,
    ticket_id: str,
    *,
    decider: str,
    kind: ActorKind | None,
    decision: TicketStatus,
    reason: str | None,
) -> tuple[Ticket, bool]:
    """Approve, reject or cancel a pending ticket; approving opens the execution window.
    Returns the ticket and whether this call made the decision.

    Approve and reject need a human who is not the requester; cancel is for the requester
    or a human. Losing a race to another decision is CONFLICT naming what won. Approving a
    ticket that was approved but never started returns it, so its execution can resume.
    """
    ticket = current_ticket(store, ticket_id)
    details = {"ticket_id": ticket_id, "status": str(ticket.status)}
    if ticket.status is TicketStatus.EXPIRED:
        raise TicketError(f"ticket {ticket_id} expired at {ticket.expires_at}", details=details)
    if decision is TicketStatus.CANCELLED:
        if decider != ticket.requested_by and kind is not ActorKind.HUMAN:
            raise PermissionDeniedError(
                "only the requester or a human can cancel a ticket", details=details
            )
    elif decider == ticket.requested_by:
        raise PermissionDeniedError(
            f"{decider} requested ticket {ticket_id} and cannot decide it (no self-approval)",
            details={**details, "reason": "self_approval"},
        )
    elif kind is not ActorKind.HUMAN:
        raise PermissionDeniedError(
            f"{decider} is not a human actor; only humans decide tickets",
            details={**details, "reason": "not_human"},
        )
    if ticket.status is TicketStatus.APPROVED and decision is TicketStatus.APPROVED:
        return ticket, False  # approved but never started (the approver's process died): resume
    if ticket.status is not TicketStatus.PENDING:
        raise InvalidTransitionError(
            f"ticket {ticket_id} is {ticket.status}"
            + (f" (decided by {ticket.decided_by})" if ticket.decided_by else ""),
            details=details,
        )
    now = utc_now()
    changed = ticket.model_copy(
        update={
            "status": decision,
            "decided_by": decider,
            "decided_at": now,
            "reason": reason,
            "execute_by": shifted(now, EXECUTION_WINDOW)
            if decision is TicketStatus.APPROVED
            else None,
        }
    )
    try:
        return store.update_ticket(changed, expected_version=ticket.version), True
    except ConflictError:
        now_is = store.get_ticket(ticket_id) or ticket
        raise ConflictError(
            f"ticket {ticket_id} was decided concurrently: it is {now_is.status}"
            + (f" (by {now_is.decided_by})" if now_is.decided_by else ""),
            details={"ticket_id": ticket_id, "status": str(now_is.status)},
        ) from None


def start_execution(store: Store, ticket: Ticket) -> Ticket:
    """approved -> executing; only one caller can win this, so the action runs once."""
    if ticket.overdue(utc_now()):
        _expire(store, ticket)
        raise TicketError(
            f"ticket {ticket.ticket_id} was not executed before {ticket.execute_by}",
            details={"ticket_id": ticket.ticket_id},
        )
    try:
        return store.update_ticket(
            ticket.model_copy(update={"status": TicketStatus.EXECUTING}),
            expected_version=ticket.version,
        )
    except ConflictError:
        raise ConflictError(
            f"ticket {ticket.ticket_id} is already being executed",
            details={"ticket_id": ticket.ticket_id},
        ) from None


def finish_execution(
    store: Store,
    ticket: Ticket,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> Ticket:
    """executing -> executed (with the result) or failed (with the error). A busy store is
    waited out a few times: a ticket left `executing` would never finish."""
    finished = ticket.model_copy(
        update={
            "status": TicketStatus.FAILED if error else TicketStatus.EXECUTED,
            "result": result,
            "error": error,
        }
    )
    for _ in range(FINISH_ATTEMPTS - 1):
        try:
            return store.update_ticket(finished, expected_version=ticket.version)
        except StoreError as exc:
            if exc.code != ErrorCode.STORE_LOCKED:
                raise
    return store.update_ticket(finished, expected_version=ticket.version)
