"""Each package's `__all__` is its public API: changing it must be a deliberate act."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from bunsui_core.actions import REGISTRY, RESOURCE_MODULES, load_actions
from bunsui_core.actions.registry import ACTION_NAMES

PUBLIC_API = {
    "bunsui_core.actions": [
        "REGISTRY",
        "RESOURCE_MODULES",
        "Action",
        "ActionContext",
        "ActionName",
        "ActionRegistry",
        "ActorId",
        "Effect",
        "Gateway",
        "load_actions",
    ],
    "bunsui_core.diagnosis": [
        "Category",
        "Classification",
        "Layer",
        "RecoveryAction",
        "SessionAnalysis",
        "analyze_session",
        "classify",
        "load_catalog",
        "rank_actions",
        "record_rerun_outcome",
        "register_recognizer",
        "template_of",
    ],
    "bunsui_core.recovery": [
        "RerunStrategy",
        "create_rerun",
        "effective_overrides",
        "executor",
        "select_jobs",
        "set_override",
        "suggest_plans",
    ],
    "bunsui_core.insights": [
        "History",
        "Insight",
        "InsightKind",
        "PipelineChange",
        "load_history",
        "pipeline_cost",
        "pipeline_insights",
        "tune_pipeline",
    ],
    "bunsui_core.engine": [
        "LocalEngine",
        "cancel_active_runs",
        "check_runnable",
        "dbt_rerun_nodes",
        "reap_lost_runners",
        "spawn_detached",
    ],
    "bunsui_core.model": [
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
    ],
    "bunsui_core.notify": [
        "Courier",
        "Delivery",
        "DeliveryError",
        "Notice",
        "NoticeKind",
        "NotificationSettings",
        "Notifier",
        "WebhookFormat",
        "WebhookTarget",
        "build_notice",
        "host_of",
        "notice_kind",
        "post_json",
        "send_once",
        "ticket_path",
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


class TestResourceModules:
    def test_every_action_is_loaded_with_its_resource(self):
        """Loading a resource's modules registers all of that resource's actions, so the CLI
        never misses a command it should offer."""
        load_actions()
        everything = {a.name for a in REGISTRY}
        by_resource: dict[str, set[str]] = {}
        for action in REGISTRY:
            by_resource.setdefault(action.resource, set()).add(action.name)
        assert set(by_resource) == set(RESOURCE_MODULES)
        for resource, modules in RESOURCE_MODULES.items():
            declared = {
                a.name for a in REGISTRY if a.handler.__module__.rsplit(".", 1)[-1] in modules
            }
            assert by_resource[resource] <= declared, resource
        assert len(everything) >= 20

    def test_declared_names_are_exactly_the_registered_actions(self):
        """Policy files are checked against the declared names: they must be the real ones."""
        load_actions()
        assert {a.name for a in REGISTRY} == ACTION_NAMES

    def test_lookup_by_name_loads_the_resource_on_first_use(self):
        """A fresh process finds any action by name (recovery plans look steps up this way)
        without anyone loading its resource first."""
        code = (
            "import sys\n"
            "from bunsui_core.actions import REGISTRY\n"
            "assert 'bunsui_core.actions.job_changes' not in sys.modules\n"
            "print(REGISTRY.get('job:update-config').name, REGISTRY.get('job:nope'))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == ["job:update-config", "None"]

    def test_listing_a_resource_imports_only_its_own_modules(self):
        """`bunsui session ...` builds its commands from the session modules alone: the
        notification sender, the insights and other resources' actions stay unimported."""
        code = (
            "import sys\n"
            "from bunsui_core.actions import REGISTRY\n"
            "names = [a.name for a in REGISTRY.of_resource('session')]\n"
            "print(' '.join(names))\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(("
            "'bunsui_core.actions.insights', 'bunsui_core.actions.notifications', "
            "'bunsui_core.actions.pipeline', 'bunsui_core.actions.approvals', "
            "'bunsui_core.notify', 'bunsui_core.insights')))))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        listed, loaded = done.stdout.split("\n")[:2]
        load_actions()
        expected = sorted(a.name for a in REGISTRY if a.resource == "session")
        assert listed.split() == expected
        assert loaded == ""
