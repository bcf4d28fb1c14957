"""Base classes of action inputs and outputs.

Schemas build on first use (`defer_build`), so a command builds only the models it touches;
inputs forbid unknown keys so a misspelt argument fails loudly instead of being ignored.
Every text in an input is bounded (its JSON Schema says so too): an agent's 15 MB id is
INVALID_ARGUMENT at once, before it can reach the store or be kept forever in the audit log.
"""

from __future__ import annotations

from typing import Any

from annotated_types import MaxLen
from pydantic import BaseModel, ConfigDict

MAX_TEXT_CHARS = 4096
"""Any text in an input: a path (PATH_MAX), a filter value, a parameter key or value."""

MAX_ID_CHARS = 128
"""An id or a name: fields named `*_id`, and the actor names in ID_FIELDS."""

ID_FIELDS = frozenset({"actor", "requested_by"})


class ActionInput(BaseModel):
    """Arguments of an action."""

    model_config = ConfigDict(extra="forbid", defer_build=True, str_max_length=MAX_TEXT_CHARS)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Bound every id field at MAX_ID_CHARS unless it declares its own bound."""
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            is_id = name.endswith("_id") or name in ID_FIELDS
            if is_id and not any(isinstance(m, MaxLen) for m in info.metadata):
                info.metadata.append(MaxLen(MAX_ID_CHARS))


class ActionOutput(BaseModel):
    """Result of an action."""

    model_config = ConfigDict(defer_build=True)
