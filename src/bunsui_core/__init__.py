"""bunsui's core library: pipelines, sessions, engines, stores and the action registry.

Nothing here prints to a terminal or imports an adapter; `bunsui_mcp` builds on it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
