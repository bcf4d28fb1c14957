"""The `table` format: results laid out for a person at a terminal of a given width.

Two rules shape every line. Nothing is wider than the terminal (80 columns when unknown),
and nothing a later command takes as input (ids, hashes, cursors, commands) is ever cut:
prose wraps, a value too long for its line moves to the next one, and a command too long for
any line is split into shell continuation lines (`\\`) that still paste and run as printed.
Lists of flat records become tables with the columns chosen for that resource (`--wide`
shows every column); records with nested parts are laid out as indented blocks.
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
from typing import Any

from bunsui_mcp._text_width import cells, wrap

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("session_id", "pipeline_id", "status", "failed_jobs", "created_at"),
    "pipelines": ("pipeline_id", "version", "name", "jobs", "registered_at"),
    "tickets": ("ticket_id", "action", "status", "requested_by", "expires_at"),
    "entries": ("seq", "timestamp", "actor", "action", "result", "resource"),
    "events": ("seq", "at", "kind", "id", "status"),
    "jobs": ("job_id", "status", "started_at", "finished_at", "operations"),
    "reruns": ("session_id", "original_session_id", "strategy", "status", "jobs_to_run"),
    "failures": ("session_id", "code", "message"),
    "checks": ("check", "ok", "detail"),
    "decisions": ("action", "outcome", "rule"),
    "totals": ("action", "successes", "failures", "confidence"),
    "resolutions": ("recorded_at", "error_code", "action", "outcome", "source"),
}
"""Columns shown for each kind of list (by its field name) unless `--wide`."""

PROSE_FIELDS = frozenset(
    {
        "error_summary",
        "message",
        "detail",
        "description",
        "reason",
        "rule",
        "note",
        "name",
        "skipped_reason",
        "risks",
        "summary",
        "resource",
        "failed_jobs",
        "jobs_to_run",
        "skipped_jobs",
        "operations",
        "arguments",
    }
)
"""Fields of free text or lists that may wrap inside a table cell (never ids)."""

COMMAND_FIELDS = frozenset({"command", "approve_command", "revert_command"})
"""Fields holding `bunsui ...` lines: split only between words, with continuations."""

GAP = 2
MIN_PROSE_WIDTH = 12
_FRACTION = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+(Z|[+-]\d\d:\d\d)?$")


def terminal_width() -> int:
    """Columns of the terminal ($COLUMNS first), 80 when there is none."""
    return shutil.get_terminal_size((80, 24)).columns


def is_untrusted_text(value: Any) -> bool:
    """Pipeline output as the core marks it: `{"trust", "text", "truncated"}`."""
    return isinstance(value, dict) and "trust" in value and "text" in value


def cell_text(key: str, value: Any, *, wide: bool = False) -> str:
    """One value as a person reads it: yes/no, `-` for nothing, lists joined."""
    if is_untrusted_text(value):
        return str(value["text"])
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell_text(k, v, wide=wide)}" for k, v in value.items())
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            # Nested records (a job's operations): their first two fields, `aggregate:failed`.
            return ", ".join(":".join(str(x) for x in list(v.values())[:2]) for v in value)
        return ", ".join(cell_text(key, v, wide=wide) for v in value)
    return _scalar_text(value, wide=wide)


def _scalar_text(value: Any, *, wide: bool) -> str:
    """yes/no for booleans, `-` for nothing, timestamps to the second unless `wide`."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, ".10g")
    text = str(value)
    match = _FRACTION.match(text)
    return f"{match[1]}{match[2] or ''}" if match and not wide else text


def wrap_command(command: str, width: int, indent: int = 0) -> list[str]:
    """A command split between words into lines of at most `width`, ending in `\\`, so the
    lines pasted into a shell run the same command."""
    if cells(command) + indent <= width:
        return [command]
    try:
        words = [shlex.quote(word) for word in shlex.split(command)]
    except ValueError:
        words = command.split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        room = width - indent - (4 if lines else 0) - 2
        if current and cells(candidate) > room:
            lines.append(current + " \\")
            current = word
        else:
            current = candidate
    lines.append(current)
    return [lines[0], *("    " + line for line in lines[1:])]


def _fold(text: str, width: int) -> list[str]:
    """Prose wrapped between words; a word longer than the line is split, not dropped."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(wrap(paragraph, max(width, 1)) or [""])
    return lines


def value_lines(key: str, text: str, indent: int, width: int) -> list[str]:
    """`key: value`, or the value on following lines when it does not fit beside its key."""
    pad = " " * indent
    label = f"{pad}{key}:"
    if "\n" not in text and cells(label) + 1 + cells(text) <= width:
        return [f"{label} {text}".rstrip()]
    inner = indent + 2
    if key in COMMAND_FIELDS:
        body = wrap_command(text, width, inner)
    elif "\n" not in text and cells(text) <= width - inner:
        body = [text]
    else:
        body = _fold(text, width - inner)
    return [label, *(" " * inner + line for line in body)]


def _block(data: dict[str, Any], indent: int, width: int, wide: bool) -> list[str]:
    """A record as indented `key: value` lines, nested lists and records below their key."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict) and value and not is_untrusted_text(value):
            if all(not isinstance(v, dict | list) for v in value.values()):
                text = cell_text(key, value, wide=wide)
                lines.extend(value_lines(key, text, indent, width))
            else:
                lines.append(" " * indent + f"{key}:")
                lines.extend(_block(value, indent + 2, width, wide))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(" " * indent + f"{key}:")
            lines.extend(_records(key, value, indent + 2, width, wide))
        elif isinstance(value, list) and not value:
            lines.append(" " * indent + f"{key}: (none)")
        elif (
            isinstance(value, list)
            and cells(cell_text(key, value)) > width - indent - cells(key) - 2
        ):
            lines.append(" " * indent + f"{key}:")
            for item in value:
                text = cell_text(key, item, wide=wide)
                wrapped = _fold(text, width - indent - 4)
                lines.append(" " * (indent + 2) + "- " + wrapped[0])
                lines.extend(" " * (indent + 4) + line for line in wrapped[1:])
        else:
            lines.extend(value_lines(key, cell_text(key, value, wide=wide), indent, width))
    return lines


def _records(
    key: str, rows: list[dict[str, Any]], indent: int, width: int, wide: bool
) -> list[str]:
    """A list of records: a table when they are flat and fit, blocks otherwise."""
    table = _table(key, rows, width - indent, wide)
    if table is not None:
        return [" " * indent + line if line else line for line in table]
    lines: list[str] = []
    for number, row in enumerate(rows):
        if number:
            lines.append("")
        block = _block(row, indent + 2, width, wide)
        first = block[0][indent + 2 :]
        lines.append(" " * indent + "- " + first)
        lines.extend(block[1:])
    return lines


def _columns(key: str, rows: list[dict[str, Any]], wide: bool) -> list[str]:
    present = list(rows[0])
    chosen = TABLE_COLUMNS.get(key)
    if wide or chosen is None:
        return present
    return [c for c in chosen if c in present]


def _table(key: str, rows: list[dict[str, Any]], width: int, wide: bool) -> list[str] | None:
    """Rows as an aligned table within `width`, or None when they cannot be one: nested
    values, or columns that must stay whole and do not fit side by side."""
    columns = _columns(key, rows, wide)
    if COMMAND_FIELDS & set(columns):
        return None  # a command gets lines of its own, to be copied without its neighbours
    flat_kinds = (str, int, float, bool, type(None))
    for row in rows:
        for column in columns:
            value = row.get(column)
            nested = isinstance(value, dict | list) and not is_untrusted_text(value)
            if column not in PROSE_FIELDS and (nested or not isinstance(value, flat_kinds)):
                return None
            if isinstance(value, str) and "\n" in value:
                return None
    # Prose columns go first, from the right, when the table is too wide for all of them.
    while columns:
        rows_text = [[cell_text(c, row.get(c), wide=wide) for c in columns] for row in rows]
        whole = [c not in PROSE_FIELDS for c in columns]
        needed = [
            max(len(c), *(cells(line[i]) for line in rows_text)) for i, c in enumerate(columns)
        ]
        fixed = sum(n for n, w in zip(needed, whole, strict=True) if w)
        prose = sum(min(n, MIN_PROSE_WIDTH) for n, w in zip(needed, whole, strict=True) if not w)
        if fixed + prose + GAP * (len(columns) - 1) <= width:
            return _rich_table(columns, rows_text, whole, needed, width)
        if all(whole):
            return None
        columns.pop(max(i for i, w in enumerate(whole) if not w))
    return None


def _rich_table(
    columns: list[str], rows_text: list[list[str]], whole: list[bool], needed: list[int], width: int
) -> list[str]:
    from rich.console import Console  # noqa: PLC0415 - only the table format pays for Rich
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=None, pad_edge=False, padding=(0, GAP, 0, 0), header_style="bold")
    for column, keep, size in zip(columns, whole, needed, strict=True):
        header = column.upper()
        if keep:
            table.add_column(header, no_wrap=True, min_width=size, overflow="ignore")
        else:
            table.add_column(header, overflow="fold", min_width=min(size, MIN_PROSE_WIDTH))
    for line in rows_text:
        table.add_row(*line)
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, color_system=None, highlight=False, markup=False, emoji=False
    )
    console.print(table, markup=False, crop=False)
    return [line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines()]


def layout(data: dict[str, Any], *, width: int | None = None, wide: bool = False) -> str:
    """A whole result: its scalar fields first, then each list of records, then the cursor
    (`next_cursor` after the rows, where the eye ends up when it wants the next page)."""
    width = width or terminal_width()
    trailing = {k: data[k] for k in ("next_cursor", "next_after_seq") if k in data}
    head = {k: v for k, v in data.items() if k not in trailing}
    scalars = {k: v for k, v in head.items() if not _is_record_list(v)}
    lists = {k: v for k, v in head.items() if _is_record_list(v)}
    parts = []
    if scalars:
        parts.append("\n".join(_block(scalars, 0, width, wide)))
    for key, rows in lists.items():
        parts.append("\n".join([f"{key}:", *_records(key, rows, 0, width, wide)]))
    if trailing:
        parts.append("\n".join(_block(trailing, 0, width, wide)))
    return "\n\n".join(parts)


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
