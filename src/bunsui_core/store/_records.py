"""Reading stored record bodies, shared by every backend: a body that does not parse is
reported as STORE_CORRUPT, never guessed at."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bunsui_core.errors import ErrorCode, StoreError

RecordT = TypeVar("RecordT", bound=BaseModel)


def parse_record(model: type[RecordT], body: str, *, table: str, key: str) -> RecordT:
    """The stored JSON body as a model, or STORE_CORRUPT naming the table and key."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise StoreError(
            f"stored {table} record {key} is corrupt",
            code=ErrorCode.STORE_CORRUPT,
            details={"table": table, "key": key, "errors": exc.error_count()},
        ) from None


def json_object(text: str) -> dict[str, Any]:
    """A raw body as a dict for audit verification; `{}` (a broken entry) when it is not one."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}
