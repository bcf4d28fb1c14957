"""The gateway: the single path every call takes, from every adapter.

invoke(actor, action, raw_args)
  -> unknown action                      -> NOT_FOUND
  -> validate input (pydantic)           -> INVALID_ARGUMENT with every field error
  -> (read-only, policy, tickets, audit: the governance layer plugs in here)
  -> run handler                         -> output model
  -> unexpected exception                -> INTERNAL (traceback to the home's log only)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from bunsui_core.actions.context import ActionContext, ActorId, ProgressCallback
from bunsui_core.actions.registry import REGISTRY, Action, ActionRegistry
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError, ErrorCode, InvalidArgumentError, NotFoundError
from bunsui_core.model.location import location
from bunsui_core.model.session import utc_now

logger = logging.getLogger("bunsui")


def validation_details(exc: ValidationError) -> dict[str, Any]:
    """Field errors as `{"errors": [{"field", "message"}]}`, locations in dotted form."""
    return {
        "errors": [
            {"field": location(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
    }


class Gateway:
    """Runs actions for any adapter; adapters never call handlers directly."""

    def __init__(self, settings: Settings, registry: ActionRegistry = REGISTRY) -> None:
        self.settings = settings
        self.registry = registry

    def action(self, name: str) -> Action:
        """The action by name, or NOT_FOUND listing what exists."""
        action = self.registry.get(name)
        if action is None:
            raise NotFoundError(
                f"unknown action {name!r}",
                details={"action": name, "known": [a.name for a in self.registry]},
            )
        return action

    def invoke(
        self,
        actor: ActorId,
        name: str,
        raw_args: Mapping[str, Any],
        *,
        progress: ProgressCallback | None = None,
    ) -> BaseModel:
        """Validate, check, run and return the action's output; every failure is a BunsuiError."""
        action = self.action(name)
        try:
            args = action.input_model.model_validate(dict(raw_args))
        except ValidationError as exc:
            raise InvalidArgumentError(
                f"invalid arguments for {name}", details=validation_details(exc)
            ) from None
        context = ActionContext(settings=self.settings, actor=actor)
        if progress is not None:
            context.progress = progress
        context.invoke = lambda step, step_args: self.invoke(
            actor, step, step_args, progress=progress
        )
        try:
            return action.handler(context, args)
        except BunsuiError:
            raise
        except Exception as exc:
            raise self._internal_error(name, exc) from None
        finally:
            context.close()

    def _internal_error(self, name: str, exc: Exception) -> BunsuiError:
        """A bug: keep the traceback in the home's log, give the caller a coded error."""
        log_path = self.settings.home / "logs" / "internal-errors.log"
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"{utc_now()} {name}\n{traceback.format_exc()}\n")
        except OSError:
            logger.debug("could not write %s", log_path)
        return BunsuiError(
            f"internal error in {name}: {type(exc).__name__}",
            code=ErrorCode.INTERNAL,
            details={"log": str(log_path)},
        )
