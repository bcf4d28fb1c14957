"""Printing results and errors for humans (table) and scripts (json, yaml)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

from bunsui_core.model.untrusted import terminal_safe


class OutputFormat(StrEnum):
    """`--format` choices; json when piped, table on a terminal, unless told otherwise."""

    JSON = "json"
    YAML = "yaml"
    TABLE = "table"


CELL_WIDTH = 60


def render(data: dict[str, Any], output_format: OutputFormat) -> str:
    """A result in the chosen format, with no control character a terminal would obey."""
    return terminal_safe(_formatted(data, output_format))


def _formatted(data: dict[str, Any], output_format: OutputFormat) -> str:
    if output_format is OutputFormat.JSON:
        return json.dumps(data, indent=2, ensure_ascii=False)
    if output_format is OutputFormat.YAML:
        import yaml  # noqa: PLC0415 - JSON and table output never need the YAML emitter

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
    return _table(data)


def print_error(error: dict[str, Any], output_format: OutputFormat) -> None:
    """Errors: `{"error": ...}` on stdout for scripts, plain text on stderr for people."""
    if output_format is OutputFormat.TABLE:
        text = f"error {error['code']}: {error['message']}"
        if error.get("details"):
            import yaml  # noqa: PLC0415 - see render()

            details = yaml.safe_dump(error["details"], sort_keys=False, allow_unicode=True)
            text += "\n" + "\n".join("  " + line for line in details.rstrip().splitlines())
        print(terminal_safe(text), file=sys.stderr)
    else:
        print(render({"error": error}, output_format))


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "trust" in value and "text" in value:
        return str(value["text"])
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
        # Nested records (a job's operations): their first two fields, e.g. `aggregate:failed`.
        text = ", ".join(":".join(str(x) for x in list(v.values())[:2]) for v in value)
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def _rows_table(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    multiline = any("\n" in cell for line in cells for cell in line)
    if multiline:
        blocks = []
        for line in cells:
            blocks.append("\n".join(f"{c}: {v}" for c, v in zip(columns, line, strict=True)))
        return "\n\n".join(blocks)
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join([header, *body]).rstrip()


def _table(data: dict[str, Any]) -> str:
    """Scalars as `key: value`, then each list of records as an aligned table."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append(f"{key}:\n{_rows_table(value)}")
        elif isinstance(value, list) and not value:
            tables.append(f"{key}: (none)")
        else:
            lines.append(f"{key}: {_cell(value)}")
    return "\n\n".join(part for part in ["\n".join(lines), *tables] if part)
