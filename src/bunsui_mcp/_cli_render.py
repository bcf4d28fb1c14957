"""Printing results and errors for humans (table) and scripts (json, yaml)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

from bunsui_core.governance.canonical import map_strings
from bunsui_core.model.untrusted import terminal_safe
from bunsui_mcp._cli_layout import layout, terminal_width
from bunsui_mcp._text_width import wrap


class OutputFormat(StrEnum):
    """`--format` choices; json when piped, table on a terminal, unless told otherwise."""

    JSON = "json"
    YAML = "yaml"
    TABLE = "table"


def render(data: dict[str, Any], output_format: OutputFormat, *, wide: bool = False) -> str:
    """A result in the chosen format (`wide`: every column of a table), with no control
    character a terminal would obey."""
    return terminal_safe(_formatted(data, output_format, wide=wide))


def _formatted(data: dict[str, Any], output_format: OutputFormat, *, wide: bool) -> str:
    if output_format is OutputFormat.JSON:
        return json.dumps(data, indent=2, ensure_ascii=False)
    if output_format is OutputFormat.YAML:
        import yaml  # noqa: PLC0415 - JSON and table output never need the YAML emitter

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
    # Escaped before it is laid out, so lines are measured as the terminal shows them (an
    # escaped control character is six columns).
    return layout(map_strings(data, terminal_safe), wide=wide)


def print_error(error: dict[str, Any], output_format: OutputFormat) -> None:
    """Errors: `{"error": ...}` on stdout for scripts, readable text on stderr for people."""
    if output_format is OutputFormat.TABLE:
        width = terminal_width()
        # Escapes first, so the wrap measures what the terminal will show.
        text = terminal_safe(f"error {error['code']}: {error['message']}")
        lines = wrap(text, width, subsequent_indent="  ")
        if error.get("details"):
            details = layout(map_strings(error["details"], terminal_safe), width=width - 2)
            lines.extend("  " + line if line else line for line in details.splitlines())
        print(terminal_safe("\n".join(lines)), file=sys.stderr)
    else:
        print(render({"error": error}, output_format))
