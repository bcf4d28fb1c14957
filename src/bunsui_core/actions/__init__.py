"""The action registry and gateway. Action modules load per resource, on first use.

`bunsui session list` loads only the session actions; `load_actions()` loads them all (for
listings such as the MCP server's tool list).
"""

from __future__ import annotations

from bunsui_core.actions.context import ActionContext, ActorId
from bunsui_core.actions.gateway import Gateway
from bunsui_core.actions.registry import (
    REGISTRY,
    RESOURCE_MODULES,
    Action,
    ActionName,
    ActionRegistry,
    Effect,
    load_actions,
)

__all__ = [
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
]
