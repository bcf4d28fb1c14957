"""The one exception family of bunsui: every failure a user or agent sees carries a stable code.

    BunsuiError                      INTERNAL | INTERRUPTED
    ├── InvalidArgumentError         INVALID_ARGUMENT
    │   ├── PipelineInvalidError     PIPELINE_INVALID
    │   └── PolicyInvalidError       POLICY_INVALID (governance/policy_file.py)
    ├── NotFoundError                NOT_FOUND
    ├── ConflictError                CONFLICT
    │   ├── InvalidTransitionError   INVALID_TRANSITION | SESSION_ACTIVE | RETRY_BUDGET_EXHAUSTED
    │   └── EscalatedError           ESCALATED (model/claims.py)
    ├── ThrottledError               THROTTLED
    ├── RecoveryError                NOT_EXECUTABLE | STEP_FAILED
    ├── PermissionDeniedError        PERMISSION_DENIED | READ_ONLY
    ├── TicketError                  TICKET_EXPIRED
    ├── AuditError                   AUDIT_CHAIN_BROKEN
    ├── StoreError                   STORE_LOCKED | STORE_CORRUPT | STORE_SCHEMA_TOO_NEW
    └── EngineError                  ENGINE_UNSUPPORTED | SPAWN_FAILED

Adapters map the class to an exit code (CLI) or a tool error (MCP); the code string is the
contract scripts and agents match on, so codes are never renamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Every stable error code bunsui reports (also listed in the README)."""

    INTERNAL = "INTERNAL"
    INTERRUPTED = "INTERRUPTED"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PIPELINE_INVALID = "PIPELINE_INVALID"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    SESSION_ACTIVE = "SESSION_ACTIVE"
    RETRY_BUDGET_EXHAUSTED = "RETRY_BUDGET_EXHAUSTED"
    ESCALATED = "ESCALATED"
    THROTTLED = "THROTTLED"
    NOT_EXECUTABLE = "NOT_EXECUTABLE"
    STEP_FAILED = "STEP_FAILED"
    POLICY_INVALID = "POLICY_INVALID"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    READ_ONLY = "READ_ONLY"
    TICKET_EXPIRED = "TICKET_EXPIRED"
    AUDIT_CHAIN_BROKEN = "AUDIT_CHAIN_BROKEN"
    STORE_LOCKED = "STORE_LOCKED"
    STORE_CORRUPT = "STORE_CORRUPT"
    STORE_SCHEMA_TOO_NEW = "STORE_SCHEMA_TOO_NEW"
    ENGINE_UNSUPPORTED = "ENGINE_UNSUPPORTED"
    SPAWN_FAILED = "SPAWN_FAILED"


class BunsuiError(Exception):
    """Root of bunsui's errors: a stable code, a message for humans, structured details."""

    default_code = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The wire shape every adapter prints: `{"code", "message", "details"}`."""
        return {"code": str(self.code), "message": self.message, "details": self.details}


class InvalidArgumentError(BunsuiError):
    """Input that does not validate; details carry every field error with its location."""

    default_code = ErrorCode.INVALID_ARGUMENT


class PipelineInvalidError(InvalidArgumentError):
    """A pipeline file that cannot run; details list every problem at once."""

    default_code = ErrorCode.PIPELINE_INVALID


class NotFoundError(BunsuiError):
    """An id that names nothing stored."""

    default_code = ErrorCode.NOT_FOUND


class ConflictError(BunsuiError):
    """A write lost an optimistic-concurrency race; re-read and decide again."""

    default_code = ErrorCode.CONFLICT


class InvalidTransitionError(ConflictError):
    """A status change the transition table forbids (e.g. completed -> running)."""

    default_code = ErrorCode.INVALID_TRANSITION


class ThrottledError(BunsuiError):
    """An actor used up a budget the policy sets (`limits:`); details say when to retry."""

    default_code = ErrorCode.THROTTLED


class RecoveryError(BunsuiError):
    """A recovery plan cannot run (needs a person) or one of its steps failed."""

    default_code = ErrorCode.NOT_EXECUTABLE


class PermissionDeniedError(BunsuiError):
    """The policy (or read-only mode) refuses this call; details name the deciding rule."""

    default_code = ErrorCode.PERMISSION_DENIED


class TicketError(BunsuiError):
    """An approval ticket that can no longer be acted on."""

    default_code = ErrorCode.TICKET_EXPIRED


class AuditError(BunsuiError):
    """The audit log's hash chain does not hold; details name the first bad entry."""

    default_code = ErrorCode.AUDIT_CHAIN_BROKEN


class StoreError(BunsuiError):
    """The store cannot be used right now (locked, corrupt, written by a newer bunsui)."""

    default_code = ErrorCode.STORE_CORRUPT


class EngineError(BunsuiError):
    """The engine cannot run what was asked (unsupported operation, spawn failure)."""

    default_code = ErrorCode.ENGINE_UNSUPPORTED
