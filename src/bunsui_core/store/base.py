"""The Store protocol: everything bunsui persists, whatever the backend (SQLite, DynamoDB)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bunsui_core.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidTransitionError,
    NotFoundError,
)
from bunsui_core.governance.audit import AuditEntry, AuditEvent, AuditHead
from bunsui_core.governance.tickets import TICKET_TRANSITIONS, Ticket, TicketStatus
from bunsui_core.model.claims import LeaseState
from bunsui_core.model.event import Event
from bunsui_core.model.insight import InsightState
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.recovery import (
    ActionStats,
    ErrorLabel,
    OverrideVersion,
    RecoveryPlan,
    Resolution,
)
from bunsui_core.model.session import (
    ErrorRecord,
    JobRun,
    OperationRun,
    Session,
    SessionStatus,
)
from bunsui_core.model.timestamps import UTC_FORMAT


class SessionFilter(BaseModel):
    """Which sessions to list; every field narrows the result."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    status: SessionStatus | None = Field(None, description="Only sessions in this status.")
    pipeline_id: str | None = Field(
        None, max_length=128, description="Only sessions of this pipeline."
    )
    created_after: str | None = Field(
        None, max_length=64, description="ISO 8601 UTC lower bound (exclusive)."
    )
    created_before: str | None = Field(
        None, max_length=64, description="ISO 8601 UTC upper bound (exclusive)."
    )
    claimed: bool | None = Field(
        None, description="true: someone's claim holds; false: nobody owns it right now."
    )
    escalated: bool | None = Field(
        None, description="true: handed to a human (a person's queue); false: not escalated."
    )
    claimed_by: str | None = Field(
        None, max_length=128, description="Only sessions this actor holds a claim on."
    )

    def lease_matches(self, lease: LeaseState, now: str) -> bool:
        """Whether a session with this stored claim and escalation passes the `claimed`,
        `claimed_by` and `escalated` filters at `now` (for stores that check each candidate
        of an index rather than ask the index)."""
        held = lease.expires_at is not None and lease.expires_at > now
        if self.claimed is not None and held != self.claimed:
            return False
        if self.claimed_by is not None and not (held and lease.holder == self.claimed_by):
            return False
        return self.escalated is None or lease.escalated == self.escalated

    @field_validator("created_after", "created_before")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        """An ISO 8601 date or time (no zone means UTC) in the stores' fixed-width form, so
        `yesterday` is an error rather than a bound that silently matches nothing."""
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            msg = f"not an ISO 8601 date or time: {value!r} (e.g. 2026-11-01T00:00:00Z)"
            raise ValueError(msg) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime(UTC_FORMAT)


@dataclass(frozen=True)
class SessionPage:
    """One page of sessions, newest first, with the cursor of the next page. A plain record,
    not a model: its sessions were validated when the store parsed them, and a validator for
    it would build Session's whole schema on every listing, even of an empty store."""

    sessions: list[Session]
    next_cursor: str | None = None


class PipelineVersion(BaseModel):
    """One registered version of a pipeline; content never changes once stored."""

    model_config = ConfigDict(defer_build=True)

    pipeline_id: str
    version: int
    content_hash: str
    registered_at: str
    source: str | None = None
    pipeline: Pipeline


def encode_cursor(created_at: str, session_id: str) -> str:
    """Opaque keyset cursor: the position after which the next page starts."""
    raw = json.dumps([created_at, session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Inverse of encode_cursor; anything else is INVALID_ARGUMENT, never a crash."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, session_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(created_at, str) or not isinstance(session_id, str):
            raise TypeError
    except (ValueError, TypeError):
        raise InvalidArgumentError(
            "cursor is not one bunsui returned", details={"field": "cursor"}
        ) from None
    return created_at, session_id


class Store(Protocol):
    """Persistence for bunsui; state changes are compare-and-set on `Session.version`."""

    read_only: bool
    """Opened in read-only mode: every write fails with READ_ONLY, so reads that would
    tidy up as they go (reaping lost runners, keeping suggested plans) skip that."""

    def close(self) -> None:
        """Release connections."""

    # pipelines
    def register_pipeline(
        self, pipeline_id: str, pipeline: Pipeline, *, source: str | None = None
    ) -> PipelineVersion:
        """Store a new version when the content differs from the latest, else return the latest."""

    def get_pipeline(self, pipeline_id: str, version: int | None = None) -> PipelineVersion | None:
        """A version (the latest when `version` is None), or None when missing."""

    def list_pipelines(self) -> list[PipelineVersion]:
        """The latest version of every pipeline, by id."""

    # sessions
    def create_session(self, session: Session) -> Session:
        """Insert a new session; CONFLICT when the id exists."""

    def get_session(self, session_id: str) -> Session | None:
        """The session, or None when missing."""

    def update_session(self, session: Session, *, expected_version: int) -> Session:
        """Write `session` if the stored version is still `expected_version` and the status
        change is legal; returns it with version bumped. CONFLICT / INVALID_TRANSITION otherwise."""

    def touch_heartbeat(self, session_id: str, heartbeat_at: str) -> None:
        """Record that the runner is alive; not a state change, so the version stays."""

    def list_sessions(
        self, session_filter: SessionFilter, *, limit: int, cursor: str | None = None
    ) -> SessionPage:
        """Sessions matching the filter, newest first, keyset-paginated."""

    # runs
    def put_job_run(self, job_run: JobRun) -> None:
        """Insert or replace the run of one job in one session."""

    def list_job_runs(self, session_id: str) -> list[JobRun]:
        """Job runs of a session, in no particular order."""

    def put_operation_run(self, operation_run: OperationRun) -> None:
        """Insert or replace the run of one operation in one session."""

    def list_operation_runs(self, session_id: str, job_id: str | None = None) -> list[OperationRun]:
        """Operation runs of a session (of one job when given)."""

    def put_runs(
        self, job_runs: Sequence[JobRun] = (), operation_runs: Sequence[OperationRun] = ()
    ) -> None:
        """Insert or replace job and operation runs together: one state change, one write."""

    # errors
    def add_error(self, error: ErrorRecord) -> None:
        """Append an error record; records are never changed afterwards."""

    def list_errors(self, session_id: str) -> list[ErrorRecord]:
        """Errors of a session in the order they happened."""

    def list_errors_by_fingerprint(
        self, fingerprint: str, *, limit: int, exclude_session_id: str | None = None
    ) -> list[ErrorRecord]:
        """Most recent errors with this fingerprint, from other sessions than the excluded one."""

    def get_error(self, error_id: str) -> ErrorRecord | None:
        """One error record by id; None when missing."""

    def add_error_label(self, label: ErrorLabel) -> None:
        """Keep a person's label of an error (labels are appended, never changed)."""

    def list_error_labels(
        self, *, templates: Collection[str] | None = None, limit: int = 10_000
    ) -> list[ErrorLabel]:
        """Labels, oldest first: every one, or only those kept under `templates` (what an
        analysis needs for its messages)."""

    def count_reruns(self, root_session_id: str) -> int:
        """How many sessions rerun this root session, directly or through other reruns."""

    # learning
    def add_resolution(self, resolution: Resolution) -> None:
        """Append an outcome and update the per-action totals atomically."""

    def action_stats(
        self, *, fingerprint: str | None = None, error_code: str | None = None
    ) -> list[ActionStats]:
        """Observed successes/failures per action for a fingerprint or an error code."""

    def list_resolutions(
        self, *, fingerprint: str | None = None, error_code: str | None = None, limit: int = 50
    ) -> list[Resolution]:
        """Most recent outcomes, for one fingerprint, one error code, or all."""

    def resolutions_of_errors(self, error_ids: list[str]) -> list[Resolution]:
        """Outcomes recorded against these error records, newest first: what was done about
        a few similar past errors costs the same however much history is stored."""

    # overrides, idempotency, plans
    def add_override_version(self, override: OverrideVersion) -> None:
        """Store the next override version; CONFLICT if that version number is taken."""

    def list_override_versions(
        self, session_id: str, job_id: str | None = None
    ) -> list[OverrideVersion]:
        """Override versions of a session (one job when given), oldest first."""

    def claim_idempotency_key(self, key: str, session_id: str) -> str:
        """Bind key -> session_id unless bound already; returns the session the key names."""

    def find_idempotency_key(self, key: str) -> str | None:
        """The session id a key is bound to, or None."""

    def release_idempotency_key(self, key: str, session_id: str) -> None:
        """Unbind a key whose session could not be created, so a retry can proceed."""

    def put_recovery_plan(self, plan: RecoveryPlan) -> None:
        """Store a plan so it can be executed by id later."""

    def get_recovery_plan(self, plan_id: str) -> RecoveryPlan | None:
        """The plan, or None when missing."""

    # insights (only decisions are stored; insights are recomputed from runs)

    def put_insight_state(self, state: InsightState) -> None:
        """Insert or replace the decision on one insight."""

    def list_insight_states(self, pipeline_id: str) -> list[InsightState]:
        """Decisions on one pipeline's insights, by insight id."""

    # approval tickets

    def create_ticket(self, ticket: Ticket) -> Ticket:
        """Insert a pending ticket; CONFLICT if an identical one (action, arguments hash,
        requester) is pending already, so a race cannot leave two."""

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket, or None when missing."""

    def find_pending_ticket(
        self, action: str, arguments_hash: str, requested_by: str
    ) -> Ticket | None:
        """The pending ticket for exactly this request, if any."""

    def update_ticket(self, ticket: Ticket, *, expected_version: int) -> Ticket:
        """Compare-and-set on `version`, enforcing the ticket transition table."""

    def list_tickets(
        self, *, status: str | None = None, requested_by: str | None = None, limit: int = 50
    ) -> list[Ticket]:
        """Tickets, newest first."""

    # audit log (append-only: there is no update or delete)

    def append_audit(self, event: AuditEvent) -> AuditEntry:
        """Place the event after the current head (seq + 1, prev_hash) atomically."""

    def list_audit(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        actor: str | None = None,
        action: str | None = None,
        session_id: str | None = None,
    ) -> list[AuditEntry]:
        """Entries with seq > after_seq, oldest first, optionally filtered."""

    def recent_audit(self, *, actor: str, action: str, since: str, limit: int) -> list[AuditEntry]:
        """An actor's entries for one action stamped after `since`, newest first: what a
        budget counts, at a cost bounded by `limit` however long the log is."""

    def audit_head(self) -> AuditHead | None:
        """The newest entry's seq and hash, or None for an empty log."""

    def audit_bodies(self, *, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Raw stored entries (parsed JSON, unvalidated) in seq order, for verification."""

    # event feed (appended by the writes that change a session's or ticket's status)

    def list_events(self, *, after_seq: int = 0, limit: int = 100) -> list[Event]:
        """Status changes after `after_seq`, oldest first."""

    def last_event_seq(self) -> int:
        """The newest event's seq (0 when none)."""


CAS_ATTEMPTS = 20


def update_session(store: Store, session_id: str, change: Callable[[Session], Session]) -> Session:
    """Apply `change` to the latest session with compare-and-set, re-reading after a lost race.

    `change` must be a pure function of the session it is given: it may run several times.
    Returning the session unchanged writes nothing.
    """
    for _ in range(CAS_ATTEMPTS):
        current = store.get_session(session_id)
        if current is None:
            raise NotFoundError(
                f"session {session_id} not found", details={"session_id": session_id}
            )
        wanted = change(current)
        if wanted == current:
            return current
        try:
            return store.update_session(wanted, expected_version=current.version)
        except InvalidTransitionError:
            raise
        except ConflictError:
            continue
    raise ConflictError(
        f"session {session_id} kept changing; gave up after {CAS_ATTEMPTS} attempts",
        details={"session_id": session_id},
    )


def check_ticket_transition(ticket_id: str, current: TicketStatus, wanted: TicketStatus) -> None:
    """INVALID_TRANSITION unless the ticket table allows current -> wanted."""
    if wanted not in TICKET_TRANSITIONS[current]:
        raise InvalidTransitionError(
            f"ticket {ticket_id} is {current}; it cannot become {wanted}",
            details={"ticket_id": ticket_id, "status": str(current), "wanted": str(wanted)},
        )
