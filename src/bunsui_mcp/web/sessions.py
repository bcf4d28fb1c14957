"""Browser sessions of the approver's inbox, kept in the server's memory.

A session is what a signed-in browser holds instead of its bearer token: a random id in an
HttpOnly cookie, the actor, the hash of the token it was opened with (so revoking the token
ends the session), a CSRF token for its forms, and an expiry. Restarting the server signs
everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_SECONDS = 8 * 3600
"""A working day; after it the approver signs in again."""

MAX_SESSIONS = 10_000
"""Beyond this, the oldest sessions are ended (sign-ins cannot exhaust memory)."""


@dataclass(frozen=True)
class WebSession:
    """One signed-in browser."""

    session_id: str
    actor: str
    token_digest: str
    csrf_token: str
    expires_at: float


class WebSessions:
    """The open sessions by id; safe to use from the server's threads."""

    def __init__(
        self, lifetime: float = SESSION_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def open(self, actor: str, token_digest: str) -> WebSession:
        """A new session for an actor who just presented a valid token."""
        session = WebSession(
            session_id=secrets.token_urlsafe(32),
            actor=actor,
            token_digest=token_digest,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=self.clock() + self.lifetime,
        )
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> WebSession | None:
        """The live session with this id, or None (unknown, ended or expired)."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= self.clock():
                del self._sessions[session_id]
                return None
            return session

    def close(self, session_id: str | None) -> None:
        """End a session (sign-out); unknown ids are ignored."""
        with self._lock:
            self._sessions.pop(session_id or "", None)
