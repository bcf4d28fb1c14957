"""What a handler may use: settings, the caller's identity, the store, a progress channel."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError, ErrorCode
from bunsui_core.store import Store, open_store

if TYPE_CHECKING:
    from bunsui_core.governance.audit import AuditEvent
    from bunsui_core.governance.policy import Policy
    from bunsui_core.governance.tickets import Ticket

ActorId = str
"""Who is calling: an OS user, an MCP connection's actor, a token's subject."""

ProgressCallback = Callable[[str], None]
Invoke = Callable[[str, dict[str, Any]], BaseModel]
"""Call another action through the gateway as the same actor (recovery plan steps)."""


def process_instance() -> str:
    """This process as a claim's instance id (`host:pid`): which CLI run or MCP server holds
    a lease, so a person can find it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _ignore_progress(_message: str) -> None:
    """Default progress sink for callers that show none."""


def _outside_gateway(*_args: Any) -> Any:
    """Hooks only the gateway can provide; a context built elsewhere has none."""
    raise BunsuiError("this needs a call through the gateway", code=ErrorCode.INTERNAL)


@dataclass
class ActionContext:
    """Per-call context; the store opens on first use, so pure actions never touch the disk.

    `approved_by` is set while an approved ticket runs: the call is the requester's, and
    the approver is recorded with it. The gateway fills in `invoke`, `audit` and
    `execute_ticket`, so handlers reach governance only through the gateway.
    """

    settings: Settings
    actor: ActorId
    progress: ProgressCallback = _ignore_progress
    invoke: Invoke = field(default=_outside_gateway, repr=False)
    audit: Callable[[AuditEvent], None] = field(default=_outside_gateway, repr=False)
    execute_ticket: Callable[[Ticket, ActorId], Ticket] = field(
        default=_outside_gateway, repr=False
    )
    approved_by: ActorId | None = None
    correlation_id: str | None = None
    instance_id: str = field(default_factory=process_instance)
    read_once: dict[str, Any] = field(default_factory=dict, repr=False)
    """Values read once per call and shared by an action's preview and its handler (a
    pipeline file's bytes), so what a ticket's check sees is what runs."""
    _policy: Policy | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)
    _owns_store: bool = field(default=True, repr=False)

    @property
    def policy(self) -> Policy:
        """The policy in force for this call."""
        if self._policy is None:
            _outside_gateway()
        return self._policy  # type: ignore[return-value]

    @property
    def store(self) -> Store:
        """The configured store, opened lazily."""
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    def close(self) -> None:
        """Release the store if this context opened it."""
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None
