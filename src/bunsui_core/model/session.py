"""Runs of a pipeline: sessions, job runs, operation runs (with every attempt) and error records."""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bunsui_core.errors import InvalidTransitionError
from bunsui_core.model import timestamps
from bunsui_core.model.claims import Escalation, SessionClaim
from bunsui_core.model.dbt_nodes import NodeResult
from bunsui_core.model.fingerprint import fingerprint_of

utc_now = timestamps.utc_now
"""The clock most modules take from here (timestamps.py holds the format and its sums)."""


def new_id(prefix: str) -> str:
    """A random id like `ses-3f9c1a7b2d4e` (48 bits: collisions are not a practical concern)."""
    return f"{prefix}-{secrets.token_hex(6)}"


class SessionStatus(StrEnum):
    """Lifecycle of a session; TRANSITIONS says which changes are legal."""

    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def is_terminal(self) -> bool:
        """Terminal sessions never change status again."""
        return not TRANSITIONS[self]


TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.CREATED: frozenset(
        {SessionStatus.QUEUED, SessionStatus.RUNNING, SessionStatus.CANCELLED, SessionStatus.FAILED}
    ),
    SessionStatus.QUEUED: frozenset(
        {SessionStatus.RUNNING, SessionStatus.CANCELLED, SessionStatus.FAILED}
    ),
    SessionStatus.RUNNING: frozenset(
        {
            SessionStatus.PAUSED,
            SessionStatus.COMPLETED,
            SessionStatus.FAILED,
            SessionStatus.CANCELLED,
            SessionStatus.TIMEOUT,
        }
    ),
    SessionStatus.PAUSED: frozenset(
        {SessionStatus.RUNNING, SessionStatus.CANCELLED, SessionStatus.FAILED}
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
    SessionStatus.TIMEOUT: frozenset(),
}


def check_transition(session_id: str, current: SessionStatus, target: SessionStatus) -> None:
    """Raise INVALID_TRANSITION unless the table allows `current -> target`."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransitionError(
            f"session {session_id} cannot go from {current} to {target}",
            details={
                "session_id": session_id,
                "from": str(current),
                "to": str(target),
                "allowed": sorted(str(s) for s in TRANSITIONS[current]),
            },
        )


class RunStatus(StrEnum):
    """Status of a job run or an operation run."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Pending and running are the only states that still change."""
        return self not in {RunStatus.PENDING, RunStatus.RUNNING}


class FailureKind(StrEnum):
    """What the engine observed about a failure: facts for the analyzer, not a diagnosis."""

    EXIT_NONZERO = "exit_nonzero"
    KILLED_BY_SIGNAL = "killed_by_signal"
    TIMEOUT = "timeout"
    SPAWN_FAILED = "spawn_failed"
    UNSUPPORTED = "unsupported"
    SESSION_TIMEOUT = "session_timeout"
    RUNNER_LOST = "runner_lost"


class MemoryEnforcement(StrEnum):
    """What held a job to its memory limit: a cgroup's memory controller, or bunsui's
    watchdog over the job's process tree where no cgroup may be made."""

    CGROUP_V2 = "cgroup_v2"
    CGROUP_V1 = "cgroup_v1"
    WATCHDOG = "watchdog"


class _Record(BaseModel):
    """Stored records reject unknown keys, so corrupt rows are detected rather than half-read."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class RunnerInfo(_Record):
    """The process that drives a session, for liveness checks."""

    pid: int
    host: str
    started_at: str
    heartbeat_at: str


class JobOverride(_Record):
    """Config layered on a job's operations for a rerun: what `job update-config` sets."""

    memory_mb: int | None = Field(None, description="Memory limit (MiB) for every operation.")
    timeout_seconds: int | None = Field(None, description="Timeout for every operation.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameters merged over the operation's."
    )
    command: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Replacement argv per operation id (`job update-command --command`).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables set for every operation (`job update-command --env`).",
    )


class RecoveryContext(_Record):
    """Why a session exists: the error it answers and the action taken, so its outcome teaches."""

    error_id: str
    error_code: str
    fingerprint: str
    action: str
    job_id: str


class Session(_Record):
    """One run of one exact pipeline version (plus any overrides, recorded here)."""

    session_id: str
    pipeline_id: str
    pipeline_version: int
    pipeline_name: str = ""
    status: SessionStatus = SessionStatus.CREATED
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    started_at: str | None = None
    finished_at: str | None = None
    failed_jobs: list[str] = Field(default_factory=list)
    error_code: str | None = None
    error_summary: str | None = None
    runner: RunnerInfo | None = None
    parent_session_id: str | None = None
    root_session_id: str | None = None
    rerun_strategy: str | None = None
    skipped_jobs: list[str] = Field(default_factory=list)
    config_overrides: dict[str, JobOverride] = Field(default_factory=dict)
    recovery: RecoveryContext | None = None
    rerun_request_hash: str | None = Field(
        None,
        description="sha256 of the rerun request that created it: its idempotency key means "
        "this request only.",
    )
    requested_by: str | None = Field(
        None, description="Actor whose call created it (the requester, for approved tickets)."
    )
    execution_arn: str | None = Field(
        None, description="Step Functions execution running this session (aws backend)."
    )
    claim: SessionClaim | None = Field(
        None, description="The lease of the actor working on it (may have expired)."
    )
    escalation: Escalation | None = Field(
        None, description="Set while the session is handed to a person."
    )
    version: int = Field(0, description="Optimistic-concurrency counter, bumped by every write.")


class OperationAttempt(_Record):
    """One try of an operation: how it ended and what it used."""

    attempt: int
    status: RunStatus
    started_at: str
    finished_at: str | None = None
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    peak_rss_mb: float | None = None
    memory_limit_mb: int | None = None
    memory_enforcement: MemoryEnforcement | None = None
    oom_killed: bool = False
    timeout_seconds: int | None = None
    elapsed_seconds: float | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    nodes: list[NodeResult] = Field(
        default_factory=list, description="dbt: every node of run_results.json."
    )
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="Files the attempt left (dbt: run_results, manifest)."
    )


class OperationRun(_Record):
    """An operation within a job run, with every attempt it took."""

    session_id: str
    job_id: str
    operation_id: str
    status: RunStatus = RunStatus.PENDING
    attempts: list[OperationAttempt] = Field(default_factory=list)


class JobRun(_Record):
    """A job within a session."""

    session_id: str
    job_id: str
    status: RunStatus = RunStatus.PENDING
    started_at: str | None = None
    finished_at: str | None = None
    workdir: str | None = None
    skipped_reason: str | None = None
    error_summary: str | None = None
    marked_by: str | None = None


class ErrorRecord(_Record):
    """A failure as observed, kept raw for the analyzer; `message` is untrusted pipeline text."""

    error_id: str = Field(default_factory=lambda: new_id("err"))
    session_id: str
    job_id: str | None = None
    operation_id: str | None = None
    attempt: int | None = None
    kind: FailureKind
    message: str
    timestamp: str = Field(default_factory=utc_now)
    context: dict[str, Any] = Field(default_factory=dict)
    fingerprint: str = ""

    @model_validator(mode="after")
    def _fingerprint(self) -> ErrorRecord:
        """Every record carries its fingerprint, however it was created or stored."""
        if not self.fingerprint:
            self.fingerprint = fingerprint_of(self.message)
        return self
