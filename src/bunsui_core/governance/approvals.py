"""The life of a ticket in the store: request, decide, execute once, finish.

Every change is a compare-and-set, so with many approvers (or processes) racing, exactly one
wins each step and the others get a clear CONFLICT naming the ticket's state.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.errors import (
    ConflictError,
    ErrorCode,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    TicketError,
)
from bunsui_core.governance.canonical import binding_hash
from bunsui_core.governance.policy import ActorKind
from bunsui_core.governance.tickets import EXECUTION_WINDOW, Ticket, TicketStatus, later
from bunsui_core.model.session import utc_now
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

    @classmethod
    def of(cls, ticket: Ticket, *, created: bool) -> PendingApproval:
        """The ticket as the caller sees it."""
        return cls(
            ticket_id=ticket.ticket_id,
            action=ticket.action,
            arguments=ticket.arguments,
            requested_by=ticket.requested_by,
            rule=ticket.rule,
            expires_at=ticket.expires_at,
            approve_command=ticket.approve_command,
            resource_uri=ticket.resource_uri,
            created=created,
        )


FILE_BYTES_BOUND = 4_000_000
"""A bound file is hashed up to this size: larger ones cannot be pipelines anyway."""


def _file_digest(value: Any) -> str | None:
    """sha256 of the regular file an argument names, or None when it names none."""
    try:
        path = Path(str(value))
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return hashlib.sha256(handle.read(FILE_BYTES_BOUND)).hexdigest()
    except (OSError, ValueError):
        return None


def bind_files(
    arguments: dict[str, Any], fields: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Arguments with file paths made absolute, and each file's content hash: approving a
    request approves that content, not whatever the path holds later."""
    bound = dict(arguments)
    files: dict[str, str | None] = {}
    for field in fields:
        if bound.get(field) is None:
            continue
        digest = _file_digest(bound[field])
        if digest is not None:
            bound[field] = str(Path(str(bound[field])).resolve())
        files[field] = digest
    return bound, files


def check_files(ticket: Ticket) -> None:
    """CONFLICT when a file the ticket bound changed (or appeared) since the request."""
    for field, expected in ticket.files.items():
        if _file_digest(ticket.arguments.get(field)) != expected:
            raise ConflictError(
                f"{ticket.arguments.get(field)} changed since ticket {ticket.ticket_id} was "
                "requested; request it again so a human approves what will run",
                details={"ticket_id": ticket.ticket_id, "field": field},
            )


def request_digest(arguments: dict[str, Any], files: dict[str, str | None] | None) -> str:
    """What makes two requests identical: the arguments and the bound files' contents."""
    return binding_hash({"arguments": arguments, "files": files or {}})


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
) -> tuple[Ticket, bool]:
    """The pending ticket for this exact request (and file contents): an existing one, or a
    new one."""
    digest = request_digest(arguments, files)
    for _ in range(REQUEST_ATTEMPTS):
        existing = store.find_pending_ticket(action, digest, requested_by)
        if existing is not None and existing.overdue(utc_now()):
            _expire(store, existing)
            existing = None
        if existing is not None:
            return existing, False
        ticket = Ticket.request(
            action=action,
            arguments=arguments,
            arguments_hash=digest,
            requested_by=requested_by,
            rule=rule,
            policy_hash=policy_hash,
            correlation_id=correlation_id,
            files=files,
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
            "execute_by": later(now, EXECUTION_WINDOW)
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
