"""`bunsui ...` command lines <-> (action, raw arguments), without a shell.

The CLI and the executor of recovery plans share these rules, so a suggested command means
exactly what typing it would: positional arguments are the action's `cli_arguments`,
`--some-field value` sets `some_field`, `--flag` / `--no-flag` set booleans, and mapping
fields take repeatable `key=value`.
"""

from __future__ import annotations

import shlex
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bunsui_core.actions.registry import Action, ActionRegistry
from bunsui_core.errors import InvalidArgumentError

PROGRAM = "bunsui"


def is_mapping_field(info: FieldInfo) -> bool:
    """Fields given as repeatable `--name key=value` (filters, parameter maps)."""
    annotation = info.annotation
    return get_origin(annotation) is dict or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    )


def is_flag(info: FieldInfo) -> bool:
    """Boolean fields: `--name` / `--no-name`."""
    return info.annotation is bool


def is_list(info: FieldInfo) -> bool:
    """Repeatable plain options."""
    return get_origin(info.annotation) is list or any(
        get_origin(a) is list for a in get_args(info.annotation)
    )


def option_name(field: str) -> str:
    """`session_id` -> `--session-id`."""
    return "--" + field.replace("_", "-")


def key_values(field: str, items: list[str]) -> dict[str, str]:
    """`["a=1", "b=2"]` -> `{"a": "1", "b": "2"}`; anything else is INVALID_ARGUMENT."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(
                f"{option_name(field)} expects key=value, got {item!r}",
                details={"field": field, "value": item},
            )
        pairs[key] = value
    return pairs


def raw_arguments(action: Action, values: dict[str, Any]) -> dict[str, Any]:
    """Option values as the gateway's raw arguments; omitted ones are left to model defaults."""
    raw: dict[str, Any] = {}
    fields = action.input_model.model_fields
    for name, value in values.items():
        if value is None or (isinstance(value, list) and not value):
            continue
        raw[name] = key_values(name, value) if is_mapping_field(fields[name]) else value
    return raw


def parse_command_line(line: str, registry: ActionRegistry) -> tuple[Action, dict[str, Any]]:
    """Split a `bunsui <resource> <verb> ...` line (shlex, no shell) into action and arguments."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"cannot parse command line: {exc}", details={"command": line}
        ) from None
    if len(words) < 3 or words[0] != PROGRAM:
        raise InvalidArgumentError(
            "expected `bunsui <resource> <action> ...`", details={"command": line}
        )
    name = f"{words[1]}:{words[2]}"
    action = registry.get(name)
    if action is None:
        raise InvalidArgumentError(
            f"unknown command `bunsui {words[1]} {words[2]}`",
            details={"command": line, "action": name},
        )
    return action, _bind(action, words[3:], line)


def _bind(action: Action, words: list[str], line: str) -> dict[str, Any]:
    fields = action.input_model.model_fields
    by_option = {option_name(f): f for f in fields}
    values: dict[str, Any] = {}
    positional = list(action.cli_arguments)
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("--"):
            if not positional:
                raise InvalidArgumentError(
                    f"unexpected argument {word!r}", details={"command": line}
                )
            values[positional.pop(0)] = word
            continue
        if (
            word.startswith("--no-")
            and by_option.get("--" + word[5:]) in fields
            and is_flag(fields[by_option["--" + word[5:]]])
        ):
            values[by_option["--" + word[5:]]] = False
            continue
        field = by_option.get(word)
        if field is None:
            raise InvalidArgumentError(f"unknown option {word}", details={"command": line})
        if is_flag(fields[field]):
            values[field] = True
            continue
        if index >= len(words):
            raise InvalidArgumentError(f"option {word} needs a value", details={"command": line})
        value = words[index]
        index += 1
        if is_mapping_field(fields[field]) or is_list(fields[field]):
            values.setdefault(field, []).append(value)
        else:
            values[field] = value
    if positional:
        raise InvalidArgumentError(
            f"missing argument {positional[0].upper()}", details={"command": line}
        )
    return raw_arguments(action, values)
