"""Domain model: pipelines (and their validation) and the records of their runs."""

from __future__ import annotations

from bunsui_core.model.pipeline import (
    Job,
    Operation,
    OperationConfig,
    OperationType,
    Pipeline,
    RetryPolicy,
)
from bunsui_core.model.pipeline_loader import (
    load_pipeline_file,
    parse_pipeline_text,
    validate_pipeline_data,
)
from bunsui_core.model.session import (
    TRANSITIONS,
    ErrorRecord,
    FailureKind,
    JobRun,
    OperationAttempt,
    OperationRun,
    RunStatus,
    Session,
    SessionStatus,
    check_transition,
)
from bunsui_core.model.untrusted import UntrustedText

__all__ = [
    "TRANSITIONS",
    "ErrorRecord",
    "FailureKind",
    "Job",
    "JobRun",
    "Operation",
    "OperationAttempt",
    "OperationConfig",
    "OperationRun",
    "OperationType",
    "Pipeline",
    "RetryPolicy",
    "RunStatus",
    "Session",
    "SessionStatus",
    "UntrustedText",
    "check_transition",
    "load_pipeline_file",
    "parse_pipeline_text",
    "validate_pipeline_data",
]
