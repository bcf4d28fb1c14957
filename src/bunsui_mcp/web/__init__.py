"""The approver's inbox: a small server-rendered web app on the HTTP transport."""

from __future__ import annotations

from bunsui_mcp.web.app import Inbox
from bunsui_mcp.web.sessions import WebSession, WebSessions

__all__ = ["Inbox", "WebSession", "WebSessions"]
