"""Text measured in terminal columns, not code points.

A CJK character or an emoji takes two columns and a combining mark none, so wrapping by
`len` let a line of Japanese prose run to twice the terminal's width. Widths come from Rich,
which also draws the tables, so a table's column sizes and its drawing agree. ASCII text, what
nearly every command prints, is measured by `len` without importing Rich.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(r"\s+|\S+")


def cells(text: str) -> int:
    """Columns `text` takes on a terminal."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # noqa: PLC0415 - only text beyond ASCII pays for Rich

    return cell_len(text)


def _head(word: str, room: int) -> int:
    """How many leading characters of `word` fit in `room` columns."""
    used = 0
    for index, char in enumerate(word):
        used += cells(char)
        if used > room:
            return index
    return len(word)


def wrap(
    text: str,
    width: int,
    *,
    initial_indent: str = "",
    subsequent_indent: str = "",
    break_long_words: bool = True,
) -> list[str]:
    """`text` in lines of at most `width` columns, broken between words (each whitespace
    character shown as one space, none at a line's ends). A word wider than a whole line is
    split when `break_long_words` (its head filling the line it starts on), else it overflows
    a line of its own. Only a line narrower than one character holds more than its width."""
    lines: list[str] = []
    fresh = cells(subsequent_indent)
    line, used, words = initial_indent, cells(initial_indent), 0
    for found in _TOKENS.findall(text):
        if found.isspace():
            if words:
                line, used = line + " " * len(found), used + len(found)
            continue
        token, size = found, cells(found)
        fits_a_line = size <= width - fresh
        if words and used + size > width and (fits_a_line or not break_long_words):
            lines.append(line.rstrip())
            line, used, words = subsequent_indent, fresh, 0
        while break_long_words and token and used + size > width:
            cut = _head(token, width - used) or (0 if words else 1)
            lines.append((line + token[:cut]).rstrip())
            token = token[cut:]
            line, used, words, size = subsequent_indent, fresh, 0, cells(token)
        if token:
            line, used, words = line + token, used + size, words + 1
    if words:
        lines.append(line.rstrip())
    return lines


def clip(text: str, width: int) -> str:
    """`text` cut to `width` columns, ending in `…` where it was cut."""
    if cells(text) <= width:
        return text
    return text[: _head(text, width - 1)] + "…" if width > 0 else ""
