"""Base classes of action inputs and outputs.

Schemas build on first use (`defer_build`), so a command builds only the models it touches;
inputs forbid unknown keys so a misspelt argument fails loudly instead of being ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ActionInput(BaseModel):
    """Arguments of an action."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class ActionOutput(BaseModel):
    """Result of an action."""

    model_config = ConfigDict(defer_build=True)
