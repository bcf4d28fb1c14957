"""The audit log: one entry per gateway call, chained by hashes so edits cannot hide.

Each entry's `hash` covers its canonical fields and the previous entry's hash; the store
assigns `seq` and `prev_hash` when appending, inside one transaction (or conditional put), so
concurrent writers cannot fork the chain. Verification walks the chain from the start: an
edited, deleted, inserted or reordered entry breaks it at that entry, and comparing the head
with one kept elsewhere detects a cut tail.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.governance.canonical import canonical_text, sha256_text
from bunsui_core.model.session import utc_now

GENESIS_HASH = "0" * 64


class AuditResult(StrEnum):
    """What happened to the call."""

    ALLOWED = "allowed"
    DENIED = "denied"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXECUTED = "executed"
    FAILED = "failed"


class Approval(BaseModel):
    """The approval part of the design's audit example."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    required: bool = False
    approved_by: str | None = None
    approved_at: str | None = None


class AuditEvent(BaseModel):
    """An entry before the store places it in the chain."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    timestamp: str = Field(default_factory=utc_now)
    actor: str
    action: str
    resource: str | None = None
    session_id: str | None = None
    approval: Approval = Field(default_factory=Approval)
    result: AuditResult
    error_code: str | None = None
    rule: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict, description="Redacted.")
    arguments_hash: str
    ticket_id: str | None = None
    correlation_id: str | None = None
    outcome: dict[str, Any] | None = Field(
        None, description="What the call did that its arguments do not say (set values only)."
    )


class AuditEntry(AuditEvent):
    """An entry in the chain."""

    seq: int
    prev_hash: str
    hash: str

    @classmethod
    def chain(cls, event: AuditEvent, *, seq: int, prev_hash: str) -> AuditEntry:
        """The event placed after the entry whose hash is `prev_hash`."""
        fields = {**event.model_dump(mode="json"), "seq": seq, "prev_hash": prev_hash}
        return cls(**fields, hash=entry_hash(fields))


def entry_hash(fields: dict[str, Any]) -> str:
    """Hash of every field but `hash` itself, in canonical form."""
    return sha256_text(canonical_text({k: v for k, v in fields.items() if k != "hash"}))


class AuditHead(BaseModel):
    """The newest entry's position and hash: keep it elsewhere to detect a cut tail."""

    model_config = ConfigDict(defer_build=True)

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


class ChainProblem(BaseModel):
    """The first place the chain does not hold."""

    model_config = ConfigDict(defer_build=True)

    seq: int = Field(description="Sequence number where the chain breaks.")
    problem: str


INDEXED = "_indexed"
"""Key under which a store hands `verify_chain` the columns it keeps outside the body
(actor, action, session_id, hash: what `audit list` filters on)."""

INDEXED_FIELDS = ("actor", "action", "session_id", "hash")


def verify_chain(
    entries: Iterable[dict[str, Any]],
) -> tuple[int, AuditHead | None, ChainProblem | None]:
    """Walk stored entries (raw JSON bodies, oldest first): count, head, first problem.

    Raw bodies are checked, not parsed models, so a tampered row that no longer parses is
    reported as a broken entry rather than crashing the check. The indexed columns must say
    what the hashed body says: an edited `actor` column would hide an entry from `audit list
    --actor` while the chain itself still held.
    """
    prev_hash = GENESIS_HASH
    count = 0
    head: AuditHead | None = None
    for expected_seq, stored in enumerate(entries, start=1):
        body = {k: v for k, v in stored.items() if k != INDEXED}
        seq = body.get("seq")
        if seq != expected_seq:
            return (
                count,
                head,
                ChainProblem(
                    seq=expected_seq,
                    problem=f"entry {expected_seq} is missing or out of order (found {seq!r})",
                ),
            )
        if body.get("prev_hash") != prev_hash:
            return (
                count,
                head,
                ChainProblem(
                    seq=expected_seq, problem="prev_hash does not match the previous entry's hash"
                ),
            )
        if body.get("hash") != entry_hash(body):
            return (
                count,
                head,
                ChainProblem(
                    seq=expected_seq, problem="entry content does not match its hash (edited)"
                ),
            )
        indexed = stored.get(INDEXED) or {}
        edited = [f for f in INDEXED_FIELDS if f in indexed and indexed[f] != body.get(f)]
        if edited:
            return (
                count,
                head,
                ChainProblem(
                    seq=expected_seq,
                    problem=f"indexed {', '.join(edited)} does not match the hashed entry (edited)",
                ),
            )
        prev_hash = body["hash"]
        count += 1
        head = AuditHead(seq=expected_seq, hash=prev_hash)
    return count, head, None
