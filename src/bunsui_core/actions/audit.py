"""Audit actions: list, export, head, verify. There is no action that changes an entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import AuditError, InvalidArgumentError
from bunsui_core.governance.audit import AuditEntry, AuditHead, verify_chain
from bunsui_core.governance.tickets import TicketStatus
from bunsui_core.store.base import Store

PAGE = 1000
MAX_TICKETS_CHECKED = 100_000


class AuditListInput(ActionInput):
    """Which entries to list."""

    after_seq: int = Field(0, ge=0, description="Only entries after this sequence number.")
    limit: int = Field(100, ge=1, le=10000, description="Most entries to return.")
    actor: str | None = Field(None, description="Only this actor's calls.")
    action: str | None = Field(None, description="Only this action.")
    session_id: str | None = Field(None, description="Only calls about this session.")


class AuditList(ActionOutput):
    """Entries, oldest first."""

    entries: list[AuditEntry] = Field(description="Oldest first.")
    next_after_seq: int | None = Field(description="Pass as after_seq for more; null at end.")


@REGISTRY.define(
    "audit:list",
    title="List audit entries",
    input_model=AuditListInput,
    output_model=AuditList,
    effect=Effect.READ,
    idempotent=True,
)
def list_entries(ctx: ActionContext, args: AuditListInput) -> AuditList:
    """List audit entries oldest first: who called what, when, with which result
    (allowed, denied, pending_approval, approved, rejected, executed, failed), the rule,
    ticket and correlation ids, and the hash chain fields."""
    entries = ctx.store.list_audit(
        after_seq=args.after_seq,
        limit=args.limit,
        actor=args.actor,
        action=args.action,
        session_id=args.session_id,
    )
    more = len(entries) == args.limit
    return AuditList(entries=entries, next_after_seq=entries[-1].seq if more else None)


class AuditExport(ActionOutput):
    """Every entry (JSON lines on the CLI)."""

    entries: list[AuditEntry] = Field(description="Every entry, oldest first.")


class NoInput(ActionInput):
    """No arguments."""


@REGISTRY.define(
    "audit:export",
    title="Export the audit log",
    input_model=NoInput,
    output_model=AuditExport,
    effect=Effect.READ,
    idempotent=True,
    cli_json_lines="entries",
)
def export(ctx: ActionContext, args: NoInput) -> AuditExport:
    """Export the whole audit log, oldest first, to keep or verify elsewhere."""
    entries: list[AuditEntry] = []
    while page := ctx.store.list_audit(after_seq=entries[-1].seq if entries else 0, limit=PAGE):
        entries.extend(page)
    return AuditExport(entries=entries)


class HeadOutput(ActionOutput):
    """Where the log ends now."""

    seq: int = Field(description="Newest sequence number (0 when empty).")
    hash: str | None = Field(description="Its hash.")
    head: str | None = Field(description="SEQ:HASH, to pass to audit verify --expect-head later.")


@REGISTRY.define(
    "audit:head",
    title="Show the audit log head",
    input_model=NoInput,
    output_model=HeadOutput,
    effect=Effect.READ,
    idempotent=True,
)
def head(ctx: ActionContext, args: NoInput) -> HeadOutput:
    """The newest entry's sequence number and hash; keep it somewhere else, and a later
    verify with it detects a log cut after that point."""
    current = ctx.store.audit_head()
    if current is None:
        return HeadOutput(seq=0, hash=None, head=None)
    return HeadOutput(seq=current.seq, hash=current.hash, head=str(current))


class VerifyInput(ActionInput):
    """What to verify against."""

    expect_head: str | None = Field(
        None, pattern=r"^\d+:[0-9a-f]{64}$", description="SEQ:HASH from an earlier audit head."
    )


class VerifyOutput(ActionOutput):
    """A chain that holds."""

    ok: bool = Field(description="Always true: a broken chain is the AUDIT_CHAIN_BROKEN error.")
    entries: int = Field(description="Entries checked.")
    head: str | None = Field(description="SEQ:HASH of the newest entry.")


def _bodies(store: Store, seen: set[tuple[str, str, str]]) -> Iterator[dict[str, Any]]:
    """Every stored entry in order, noting each (ticket_id, action, result) in `seen`."""
    after = 0
    while page := store.audit_bodies(after_seq=after, limit=PAGE):
        for body in page:
            ticket_id = body.get("ticket_id")
            if isinstance(ticket_id, str):
                seen.add((ticket_id, str(body.get("action")), str(body.get("result"))))
            yield body
        last = page[-1].get("seq")
        if not isinstance(last, int) or last <= after:
            return  # a broken body: verification stops there and reports it
        after = last


TICKET_EVIDENCE: dict[TicketStatus, tuple[frozenset[str], ...]] = {
    TicketStatus.APPROVED: (frozenset({"approved"}),),
    TicketStatus.EXECUTING: (frozenset({"approved"}),),
    TicketStatus.EXECUTED: (frozenset({"approved"}), frozenset({"executed"})),
    TicketStatus.FAILED: (frozenset({"approved"}), frozenset({"failed", "denied"})),
}
"""Audit results a ticket in each status must have left in the chain (one of each set)."""


def _unaccounted_tickets(store: Store, seen: set[tuple[str, str, str]]) -> list[str]:
    """Tickets whose status claims a decision or an execution the chain does not record
    (a ticket row edited to `approved`, or an execution nobody audited)."""
    problems = []
    for status, evidence in TICKET_EVIDENCE.items():
        for ticket in store.list_tickets(status=status, limit=MAX_TICKETS_CHECKED):
            for results in evidence:
                if not any((ticket.ticket_id, ticket.action, r) in seen for r in results):
                    problems.append(
                        f"ticket {ticket.ticket_id} is {status} but the audit log has no "
                        f"{'/'.join(sorted(results))} entry for it"
                    )
                    break
    return problems


@REGISTRY.define(
    "audit:verify",
    title="Verify the audit log",
    input_model=VerifyInput,
    output_model=VerifyOutput,
    effect=Effect.READ,
    idempotent=True,
)
def verify(ctx: ActionContext, args: VerifyInput) -> VerifyOutput:
    """Recompute the audit log's hash chain from the first entry. Any edited, deleted,
    inserted or reordered entry (or an indexed column that disagrees with its entry) fails
    with AUDIT_CHAIN_BROKEN naming the first bad one; so does a ticket marked approved or
    executed without the matching entries. With expect_head (from an earlier audit head) a
    cut tail is detected too."""
    seen: set[tuple[str, str, str]] = set()
    count, current, problem = verify_chain(_bodies(ctx.store, seen))
    if problem is not None:
        raise AuditError(
            f"audit log broken at entry {problem.seq}: {problem.problem}",
            details={"seq": problem.seq, "problem": problem.problem, "verified": count},
        )
    unaccounted = _unaccounted_tickets(ctx.store, seen)
    if unaccounted:
        raise AuditError(
            f"{len(unaccounted)} ticket(s) not accounted for by the audit log: {unaccounted[0]}",
            details={"problem": "tickets", "tickets": unaccounted, "verified": count},
        )
    if args.expect_head is not None:
        _check_expected(ctx.store, args.expect_head, current)
    return VerifyOutput(ok=True, entries=count, head=str(current) if current else None)


def _check_expected(store: Store, expect_head: str, current: AuditHead | None) -> None:
    """The entry at the expected head's seq must still exist with the same hash: a cut tail,
    even one followed by new entries, makes the chain from there on a different one."""
    seq_text, expected_hash = expect_head.split(":")
    seq = int(seq_text)
    if seq == 0:
        raise InvalidArgumentError("expect_head names entry 0, which does not exist")
    if current is None or current.seq < seq:
        raise AuditError(
            f"audit log ends at entry {current.seq if current else 0}, before the expected "
            f"head {seq}: entries were cut from the end",
            details={"seq": current.seq + 1 if current else 1, "problem": "truncated"},
        )
    [entry] = store.audit_bodies(after_seq=seq - 1, limit=1)
    if entry.get("hash") != expected_hash:
        raise AuditError(
            f"entry {seq} does not have the expected hash: the log was cut and rewritten after it",
            details={"seq": seq, "problem": "head hash mismatch"},
        )
