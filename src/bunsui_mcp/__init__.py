"""Adapters over the bunsui action registry: the `bunsui` CLI and the MCP server."""

from __future__ import annotations

__all__: list[str] = []
