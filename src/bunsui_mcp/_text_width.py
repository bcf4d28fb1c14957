"""Text measured in terminal columns, not code points.

A CJK character or an emoji takes two columns and a combining mark none, so wrapping by
`len` let a line of Japanese prose run to twice the terminal's width. Widths come from Rich,
which also draws the tables, so a table's column sizes and its drawing agree. ASCII text, what
nearly every command prints, is measured by `len` without importing Rich.
"""

from __future__ import annotations

import re
import unicodedata

_BREAKS = "\t\n\x0b\x0c\r "
_TOKENS = re.compile(f"[{_BREAKS}]+|[^{_BREAKS}]+")
"""Words and the runs between them; as in textwrap, only ASCII whitespace separates words (a
no-break space is part of its word)."""


def cells(text: str) -> int:
    """Columns `text` takes on a terminal."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # noqa: PLC0415 - only text beyond ASCII pays for Rich

    return cell_len(text)


_JOINER = "\u200d"
_MARKS = frozenset({"Mn", "Me", "Mc"})
_REGIONAL = range(0x1F1E6, 0x1F200)


def _continues(char: str, previous: str) -> bool:
    """Whether `char` (beyond ASCII) belongs to the character before it on screen: a combining
    mark, a variation selector, an emoji modifier or tag, a zero-width joiner, or the second
    of two regional indicators (one flag)."""
    point = ord(char)
    return (
        char == _JOINER
        or 0xFE00 <= point <= 0xFE0F
        or 0x1F3FB <= point <= 0x1F3FF
        or 0xE0000 <= point <= 0xE01EF
        or unicodedata.category(char) in _MARKS
        or (point in _REGIONAL and len(previous) == 1 and ord(previous) in _REGIONAL)
    )


def _clusters(text: str) -> list[str]:
    """`text` as the characters a terminal draws (approximate grapheme clusters), so a cut
    never parts an accent from its letter or a joined emoji from itself."""
    if text.isascii():
        return list(text)
    found: list[str] = []
    for char in text:
        joined = found and found[-1].endswith(_JOINER)  # what a joiner joins is one too
        if joined or (found and not char.isascii() and _continues(char, found[-1])):
            found[-1] += char
        else:
            found.append(char)
    return found


def _fitting(widths: list[int], start: int, room: int) -> tuple[int, int]:
    """(end, columns) of the longest run of characters from `start` within `room` columns,
    given each character's width."""
    end, taken = start, 0
    while end < len(widths) and taken + widths[end] <= room:
        taken, end = taken + widths[end], end + 1
    return end, taken


def wrap(
    text: str,
    width: int,
    *,
    initial_indent: str = "",
    subsequent_indent: str = "",
    break_long_words: bool = True,
) -> list[str]:
    """`text` in lines of at most `width` columns, broken between words, as textwrap does it
    (tabs expanded, each other whitespace character shown as a space, none at a line's end,
    the paragraph's own indentation kept) but counting columns. A word wider than a whole line
    is split when `break_long_words` (its head filling the line it starts on), else it
    overflows a line of its own. Only a line narrower than one character holds more."""
    lines: list[str] = []
    fresh = cells(subsequent_indent)
    line, used, words = initial_indent, cells(initial_indent), 0
    for found in _TOKENS.findall(text.expandtabs()):
        if found[0] in _BREAKS or found.isspace():
            if words or not lines:  # between words, or the paragraph's indentation
                gap = " " * len(found) if found[0] in _BREAKS else found
                line, used = line + gap, used + cells(gap)
            continue
        token, size = found, cells(found)
        if not lines and not words and used + size > width >= cells(initial_indent) + size:
            line, used = initial_indent, cells(initial_indent)  # indentation gives way
        if words and used + size > width and (size <= width - fresh or not break_long_words):
            lines.append(line.rstrip())
            line, used, words = subsequent_indent, fresh, 0
        if break_long_words and used + size > width:
            token, size = _split_long(
                token, size, lines, line=line, used=used, width=width, indent=subsequent_indent
            )
            line, used, words = subsequent_indent, fresh, 0
        if token:
            line, used, words = line + token, used + size, words + 1
    if words:
        lines.append(line.rstrip())
    return lines


def _split_long(
    word: str, size: int, lines: list[str], *, line: str, used: int, width: int, indent: str
) -> tuple[str, int]:
    """Append to `lines` the full lines a long `word` fills, starting on `line` (`used`
    columns taken); return its remainder and the remainder's width. One pass over the word."""
    parts = _clusters(word)
    widths = [cells(part) for part in parts]
    start, fresh = 0, cells(indent)
    while start < len(parts) and used + size > width:
        cut, taken = _fitting(widths, start, width - used)
        if cut == start and not line.strip():
            if used > fresh:  # only the paragraph's indentation: a fresh line has more room
                line, used = indent, fresh
                continue
            taken, cut = widths[start], start + 1  # not one character fits a fresh line
        lines.append((line + "".join(parts[start:cut])).rstrip())
        start, size = cut, size - taken
        line, used = indent, fresh
    return "".join(parts[start:]), size


def clip(text: str, width: int) -> str:
    """`text` cut to `width` columns, ending in `…` where it was cut."""
    if cells(text) <= width:
        return text
    parts = _clusters(text)
    end, _ = _fitting([cells(part) for part in parts], 0, width - 1)
    return "".join(parts[:end]) + "…" if width > 0 else ""
