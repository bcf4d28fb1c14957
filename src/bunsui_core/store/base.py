"""The Store protocol: everything bunsui persists, whatever the backend (SQLite, DynamoDB)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidTransitionError,
    NotFoundError,
)
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import (
    ErrorRecord,
    JobRun,
    OperationRun,
    Session,
    SessionStatus,
)


class SessionFilter(BaseModel):
    """Which sessions to list; every field narrows the result."""

    model_config = ConfigDict(extra="forbid")

    status: SessionStatus | None = Field(None, description="Only sessions in this status.")
    pipeline_id: str | None = Field(None, description="Only sessions of this pipeline.")
    created_after: str | None = Field(None, description="ISO 8601 UTC lower bound (exclusive).")
    created_before: str | None = Field(None, description="ISO 8601 UTC upper bound (exclusive).")


class SessionPage(BaseModel):
    """One page of sessions, newest first, with the cursor of the next page."""

    sessions: list[Session]
    next_cursor: str | None = None


class PipelineVersion(BaseModel):
    """One registered version of a pipeline; content never changes once stored."""

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

    # errors
    def add_error(self, error: ErrorRecord) -> None:
        """Append an error record; records are never changed afterwards."""

    def list_errors(self, session_id: str) -> list[ErrorRecord]:
        """Errors of a session in the order they happened."""


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
