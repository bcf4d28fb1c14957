"""The action registry and gateway; importing this package registers every action."""

from __future__ import annotations

from bunsui_core.actions import (
    errors,
    job_changes,
    jobs,
    pipelines,
    recovery,
    reruns,
    sessions,
)
from bunsui_core.actions.context import ActionContext, ActorId
from bunsui_core.actions.gateway import Gateway
from bunsui_core.actions.registry import REGISTRY, Action, ActionName, ActionRegistry, Effect

__all__ = [
    "REGISTRY",
    "Action",
    "ActionContext",
    "ActionName",
    "ActionRegistry",
    "ActorId",
    "Effect",
    "Gateway",
    "errors",
    "job_changes",
    "jobs",
    "pipelines",
    "recovery",
    "reruns",
    "sessions",
]
