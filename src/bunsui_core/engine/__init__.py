"""Engines that run sessions; `local` runs command operations as real child processes."""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "LocalEngine": "local",
        "cancel_active_runs": "local",
        "check_runnable": "local",
        "dbt_rerun_nodes": "project_jobs",
        "reap_lost_runners": "liveness",
        "spawn_detached": "runner",
    },
)

__all__ = [
    "LocalEngine",
    "cancel_active_runs",
    "check_runnable",
    "dbt_rerun_nodes",
    "reap_lost_runners",
    "spawn_detached",
]
