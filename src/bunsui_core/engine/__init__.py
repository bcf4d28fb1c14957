"""Engines that run sessions; `local` runs command operations as real child processes."""

from __future__ import annotations

from bunsui_core.engine.liveness import reap_lost_runners
from bunsui_core.engine.local import LocalEngine, check_runnable
from bunsui_core.engine.runner import spawn_detached

__all__ = ["LocalEngine", "check_runnable", "reap_lost_runners", "spawn_detached"]
