"""Recovery: overrides, reruns, evidence-based sizing, plans and their execution."""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "RerunStrategy": "rerun",
        "create_rerun": "rerun",
        "effective_overrides": "overrides",
        "executor": "executor",
        "select_jobs": "rerun",
        "set_override": "overrides",
        "suggest_plans": "planner",
    },
)

__all__ = [
    "RerunStrategy",
    "create_rerun",
    "effective_overrides",
    "executor",
    "select_jobs",
    "set_override",
    "suggest_plans",
]
