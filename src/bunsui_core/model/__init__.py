"""Domain model: pipelines (and their validation) and the records of their runs."""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

_EXPORTS = {
    "TRANSITIONS": "session",
    "ErrorRecord": "session",
    "FailureKind": "session",
    "Job": "pipeline",
    "JobRun": "session",
    "MemoryEnforcement": "session",
    "NodeResult": "dbt_nodes",
    "Operation": "pipeline",
    "OperationAttempt": "session",
    "OperationConfig": "pipeline",
    "OperationRun": "session",
    "OperationType": "pipeline",
    "Pipeline": "pipeline",
    "RetryPolicy": "pipeline",
    "RunStatus": "session",
    "Session": "session",
    "SessionStatus": "session",
    "UntrustedText": "untrusted",
    "check_transition": "session",
    "load_definition": "project_loader",
    "load_pipeline_file": "pipeline_loader",
    "load_project": "project_loader",
    "parse_pipeline_text": "pipeline_loader",
    "validate_pipeline_data": "pipeline_loader",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "TRANSITIONS",
    "ErrorRecord",
    "FailureKind",
    "Job",
    "JobRun",
    "MemoryEnforcement",
    "NodeResult",
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
    "load_definition",
    "load_pipeline_file",
    "load_project",
    "parse_pipeline_text",
    "validate_pipeline_data",
]
