"""Approval actions: list, show, approve (which executes once), reject, cancel."""

from __future__ import annotations

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.governance import approvals
from bunsui_core.governance.audit import Approval, AuditEvent, AuditResult
from bunsui_core.governance.canonical import arguments_hash
from bunsui_core.governance.tickets import Ticket, TicketStatus


class TicketListInput(ActionInput):
    """Which tickets to list."""

    status: TicketStatus | None = Field(None, description="Only tickets in this status.")
    requested_by: str | None = Field(None, description="Only tickets this actor requested.")
    limit: int = Field(50, ge=1, le=1000, description="Most tickets to return (newest first).")


class TicketList(ActionOutput):
    """Tickets, newest first."""

    tickets: list[Ticket] = Field(description="Newest first.")


@REGISTRY.define(
    "approval:list",
    title="List approval tickets",
    input_model=TicketListInput,
    output_model=TicketList,
    effect=Effect.READ,
    idempotent=True,
)
def list_tickets(ctx: ActionContext, args: TicketListInput) -> TicketList:
    """List approval tickets (newest first), e.g. the pending ones a human should decide.
    A ticket past its deadline shows as expired."""
    tickets = ctx.store.list_tickets(
        status=args.status, requested_by=args.requested_by, limit=args.limit
    )
    return TicketList(tickets=[approvals.current_ticket(ctx.store, t.ticket_id) for t in tickets])


class TicketInput(ActionInput):
    """One ticket."""

    ticket_id: str = Field(description="Ticket id (tkt-...).")


@REGISTRY.define(
    "approval:show",
    title="Show an approval ticket",
    input_model=TicketInput,
    output_model=Ticket,
    effect=Effect.READ,
    idempotent=True,
    cli_arguments=("ticket_id",),
)
def show(ctx: ActionContext, args: TicketInput) -> Ticket:
    """Show one ticket: its status (pending, approved, executing, executed, failed,
    rejected, expired, cancelled), the exact action and arguments it binds, who asked and
    who decided, and once executed the action's result or error. Poll this to learn the
    outcome of a request that returned pending_approval."""
    return approvals.current_ticket(ctx.store, args.ticket_id)


class DecisionInput(TicketInput):
    """A decision on one ticket."""

    reason: str | None = Field(None, max_length=2000, description="Why, for the audit log.")


def _decide(ctx: ActionContext, args: DecisionInput, decision: TicketStatus) -> Ticket:
    """Decide, and record the decision in the audit log only when this call made it."""
    ticket, decided = approvals.decide(
        ctx.store,
        args.ticket_id,
        decider=ctx.actor,
        kind=ctx.policy.kind_of(ctx.actor),
        decision=decision,
        reason=args.reason,
    )
    if not decided:
        return ticket
    results = {
        TicketStatus.APPROVED: AuditResult.APPROVED,
        TicketStatus.REJECTED: AuditResult.REJECTED,
        TicketStatus.CANCELLED: AuditResult.CANCELLED,
    }
    ctx.audit(
        AuditEvent(
            actor=ctx.actor,
            action=ticket.action,
            resource=f"ticket_id:{ticket.ticket_id}",
            session_id=ticket.arguments.get("session_id"),
            approval=Approval(
                required=True,
                approved_by=ctx.actor if decision is TicketStatus.APPROVED else None,
                approved_at=ticket.decided_at if decision is TicketStatus.APPROVED else None,
            ),
            result=results[decision],
            rule=ticket.rule,
            arguments_hash=arguments_hash(ticket.arguments),
            ticket_id=ticket.ticket_id,
            correlation_id=ctx.correlation_id,
        )
    )
    return ticket


@REGISTRY.define(
    "approval:approve",
    title="Approve a ticket (executes it)",
    input_model=DecisionInput,
    output_model=Ticket,
    effect=Effect.WRITE,
    cli_arguments=("ticket_id",),
)
def approve(ctx: ActionContext, args: DecisionInput) -> Ticket:
    """Approve a pending ticket and execute its action exactly once, as the requester's
    call with you recorded as approver, after checking policy and read-only mode again.
    Only a human other than the requester may approve. Returns the ticket with the result."""
    ticket = _decide(ctx, args, TicketStatus.APPROVED)
    return ctx.execute_ticket(ticket, ticket.decided_by or ctx.actor)


@REGISTRY.define(
    "approval:reject",
    title="Reject a ticket",
    input_model=DecisionInput,
    output_model=Ticket,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("ticket_id",),
)
def reject(ctx: ActionContext, args: DecisionInput) -> Ticket:
    """Reject a pending ticket: its action never runs. Only a human other than the
    requester may reject."""
    return _decide(ctx, args, TicketStatus.REJECTED)


@REGISTRY.define(
    "approval:cancel",
    title="Cancel a ticket",
    input_model=DecisionInput,
    output_model=Ticket,
    effect=Effect.WRITE,
    idempotent=True,
    cli_arguments=("ticket_id",),
)
def cancel(ctx: ActionContext, args: DecisionInput) -> Ticket:
    """Withdraw a pending request (the requester, or a human): its action never runs."""
    return _decide(ctx, args, TicketStatus.CANCELLED)
