"""Tickets as the human deciding them reads them: every argument and the whole preview,
wrapped to the terminal and never cut, with control characters made visible."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

from bunsui_core.governance.tickets import ticket_headline
from bunsui_core.model.untrusted import HIDDEN, code_point
from bunsui_mcp._cli_layout import value_lines
from bunsui_mcp._text_width import wrap

INDENT = "  "
SHOWN_AS_ESCAPES = re.compile(f"{HIDDEN.pattern}|[\t\n]")
"""Characters that would move, hide or disguise text on a terminal (ANSI escapes, bidi
overrides, zero-width and look-alike spaces), and tabs and newlines, which a wrapped line
would show as spaces: the approver sees every value exactly."""

TICKET_HEAD = ("ticket_id", "status", "action", "requested_by", "rule")
TICKET_TIMES = ("created_at", "expires_at", "decided_by", "decided_at", "execute_by", "reason")


def _visible(text: str) -> str:
    """The text with every hiding character shown as its escape (`\\u202e`)."""
    return SHOWN_AS_ESCAPES.sub(lambda m: code_point(m.group()), text)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _visible(value)
    if isinstance(value, list):
        return _visible(json.dumps(value, ensure_ascii=False))
    return json.dumps(value, ensure_ascii=False)


def _wrap(text: str, indent: str, width: int) -> list[str]:
    """Wrapped at spaces only: an id or a path longer than a line overflows, never breaks."""
    return wrap(
        text,
        max(width, 20),
        initial_indent=indent,
        subsequent_indent=indent + INDENT * 2,
        break_long_words=False,
    ) or [indent.rstrip()]


def _nested(value: Any) -> bool:
    """A non-empty mapping, or a list holding mappings or lists: shown on lines of its own."""
    if isinstance(value, dict):
        return bool(value)
    return isinstance(value, list) and any(isinstance(v, dict | list) for v in value)


def _tree(value: Any, indent: str, width: int) -> list[str]:
    """Nested data as indented `key: value` lines; lists of records as `-` items."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            label = _visible(str(key))
            if _nested(item):
                lines.append(f"{indent}{label}:")
                lines.extend(_tree(item, indent + INDENT, width))
            else:
                shown = "{}" if item == {} else _scalar(item)
                lines.extend(_wrap(f"{label}: {shown}", indent, width))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                nested = _tree(item, indent + INDENT, width)
                first = nested[0][len(indent) + len(INDENT) :] if nested else ""
                lines.append(f"{indent}- {first}")
                lines.extend(nested[1:])
            else:
                lines.extend(_wrap(f"- {_scalar(item)}", indent, width))
    else:
        lines.extend(_wrap(_scalar(value), indent, width))
    return lines


def ticket_text(ticket: dict[str, Any], width: int | None = None) -> str:
    """One ticket in full: who and when, the summary, every argument, the whole preview."""
    width = width or shutil.get_terminal_size().columns
    lines: list[str] = []
    for key in TICKET_HEAD:
        if ticket.get(key) is not None:
            lines.extend(_wrap(f"{key}: {_scalar(ticket[key])}", "", width))
    for key in TICKET_TIMES:
        if ticket.get(key):
            lines.extend(_wrap(f"{key}: {_scalar(ticket[key])}", "", width))
    for key in ("approve_command", "resource_uri"):
        if ticket.get(key):  # whole: a command too long for a line continues with `\`
            lines.extend(value_lines(key, ticket[key], 0, width))
    lines.append("summary:")
    lines.extend(_wrap(_visible(ticket_headline(ticket)), INDENT, width))
    lines.append("arguments:")
    lines.extend(_tree(ticket.get("arguments") or {}, INDENT, width) or [f"{INDENT}(none)"])
    preview = ticket.get("preview")
    if preview:
        lines.extend(_wrap(f"preview_hash: {ticket.get('preview_hash')}", "", width))
        lines.append("preview:")
        lines.extend(_tree(preview.get("effect") or {}, INDENT, width))
        if preview.get("files"):
            lines.append(f"{INDENT}files:")
            lines.extend(_tree(preview["files"], INDENT * 2, width))
    else:
        lines.append("preview: (none: this action declares no preview)")
    for key in ("result", "error"):
        if ticket.get(key):
            lines.append(f"{key}:")
            lines.extend(_tree(ticket[key], INDENT, width))
    return "\n".join(lines)


def ticket_list_text(tickets: list[dict[str, Any]], width: int | None = None) -> str:
    """One block per ticket: id, status, requester, deadline, then its one-line summary."""
    width = width or shutil.get_terminal_size().columns
    if not tickets:
        return "tickets: (none)"
    blocks = []
    for ticket in tickets:
        head = "  ".join(
            str(ticket.get(k) or "") for k in ("ticket_id", "status", "requested_by", "expires_at")
        )
        blocks.append("\n".join([head, *_wrap(_visible(ticket_headline(ticket)), INDENT, width)]))
    return "\n".join(blocks)
