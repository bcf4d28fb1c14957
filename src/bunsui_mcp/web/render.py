"""HTML building blocks: escaping for attacker-controlled text, and a generic value renderer.

Everything a ticket carries (arguments, previews, results, reasons) was written by someone
else, often an agent: it is escaped here, invisible and direction-changing characters are
shown as visible markers (so `approve` cannot be made to read as something else), and
nothing is ever truncated.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from bunsui_core.model.untrusted import HIDDEN


def esc(value: object) -> str:
    """Text safe for HTML content and quoted attributes, hidden characters made visible."""
    shown = HIDDEN.sub(lambda m: f"\u27e8U+{ord(m.group()):04X}\u27e9", str(value))
    return html.escape(shown, quote=True)


def _scalar(value: object) -> str:
    if value is None:
        return '<span class="none">none</span>'
    if isinstance(value, bool):
        return f"<code>{'true' if value else 'false'}</code>"
    if isinstance(value, str) and value == "":
        return '<span class="none">(empty)</span>'
    return f"<code>{esc(value)}</code>"


def value_html(value: Any) -> str:
    """Any JSON value as nested definition lists and lists, in full. A `{before, after}`
    pair reads `before → after`."""
    if isinstance(value, dict):
        return _mapping_html(value)
    if isinstance(value, list):
        return _list_html(value)
    return _scalar(value)


def _mapping_html(value: dict[str, Any]) -> str:
    if set(value) == {"before", "after"}:
        return (
            f'<span class="before">{value_html(value["before"])}</span>'
            ' <span aria-label="changes to">\u2192</span> '
            f'<span class="after">{value_html(value["after"])}</span>'
        )
    if not value:
        return '<span class="none">(none)</span>'
    items = "".join(
        f"<div><dt>{esc(key)}</dt><dd>{value_html(item)}</dd></div>" for key, item in value.items()
    )
    return f'<dl class="value">{items}</dl>'


def _list_html(value: list[Any]) -> str:
    if not value:
        return '<span class="none">(none)</span>'
    if all(not isinstance(item, dict | list) for item in value):
        return f'<span class="list">{" ".join(_scalar(item) for item in value)}</span>'
    return '<ol class="value">' + "".join(f"<li>{value_html(i)}</li>" for i in value) + "</ol>"


def parse_time(stamp: str) -> datetime | None:
    """bunsui's UTC timestamps (`...Z`) as aware datetimes; None for anything else."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def relative(stamp: str | None, now: datetime | None = None) -> str:
    """`<time>` saying how long ago (or until) a timestamp is, with the exact UTC time."""
    if not stamp:
        return '<span class="none">none</span>'
    moment = parse_time(stamp)
    if moment is None:
        return esc(stamp)
    delta = (moment - (now or datetime.now(UTC))).total_seconds()
    words = f"in {_span(delta)}" if delta > 0 else f"{_span(delta)} ago"
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{esc(stamp)}" title="{exact}">{words}</time>'
