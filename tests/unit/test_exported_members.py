"""Each package's `__all__` is its public API: changing it must be a deliberate act."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_API = {
    "bunsui_core.actions": [
        "REGISTRY",
        "Action",
        "ActionContext",
        "ActionName",
        "ActionRegistry",
        "ActorId",
        "Effect",
        "Gateway",
        "jobs",
        "pipelines",
        "sessions",
    ],
    "bunsui_core.engine": ["LocalEngine", "check_runnable", "reap_lost_runners", "spawn_detached"],
    "bunsui_core.model": [
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
    ],
    "bunsui_core.store": [
        "PipelineVersion",
        "SessionFilter",
        "SessionPage",
        "Store",
        "open_store",
        "update_session",
    ],
}


class TestExportedMembers:
    @pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
    def test_all_is_the_declared_api(self, module_name):
        """`__all__` lists exactly the public names (ruff's RUF022 keeps it sorted), all real."""
        module = importlib.import_module(module_name)
        assert module.__all__ == PUBLIC_API[module_name]
        for name in module.__all__:
            assert hasattr(module, name), name
