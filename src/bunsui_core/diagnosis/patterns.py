"""Linear-time text patterns with boundaries that cannot leak across words.

Every pattern diagnosis runs on pipeline text is compiled with RE2, whose matching time is
linear in the input: untrusted log tails (40,000 digits, a token repeated for a megabyte)
cannot make a classification take seconds, as backtracking `re` did.

Boundary and case rules, applied to every catalog pattern so no entry can get them wrong:
- a pattern beginning or ending with a word character is anchored at a word boundary there,
  so `ENOTFOUND` never matches inside `ModuleNotFoundError`;
- an identifier (no space: `ThrottlingException`, `ENOSPC`, `States.Timeout`) is matched
  case-sensitively, because case is part of its spelling; it may be followed by a further
  CamelCase word (`AccessDenied` matches `AccessDeniedException`), never by lowercase letters;
- prose (a pattern with a space: `connection reset by peer`) is matched case-insensitively,
  because services capitalise sentences differently.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol

import re2

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class TextMatch(Protocol):
    """The part of a match object diagnosis uses."""

    def group(self, name: str | int = 0) -> str | None: ...  # pragma: no cover - protocol

    def groupdict(self) -> dict[str, str | None]: ...  # pragma: no cover - protocol


class TextPattern(Protocol):
    """A compiled linear-time pattern."""

    def search(self, text: str) -> TextMatch | None: ...  # pragma: no cover - protocol

    def finditer(self, text: str) -> object: ...  # pragma: no cover - protocol


def _is_prose(pattern: str) -> bool:
    return " " in pattern


def _last_literal(pattern: str) -> str:
    """The pattern's final character, if it is a literal (not an escape, class or group)."""
    if not pattern or pattern.endswith(("\\", ")", "]", "*", "+", "?", "}", "|", ".")):
        return ""
    if len(pattern) >= 2 and pattern[-2] == "\\":
        return ""
    return pattern[-1]


def bounded(pattern: str) -> str:
    """The pattern with the house boundary and case rules written into it."""
    start = r"\b" if pattern[:1] in _WORD_CHARS else ""
    last = _last_literal(pattern)
    if last and last in _WORD_CHARS:
        # Identifiers ending in a lowercase letter may continue with a CamelCase word
        # (AccessDenied -> AccessDeniedException); anything else must end at a boundary.
        end = r"(?:\b|[A-Z_])" if last.islower() and not _is_prose(pattern) else r"\b"
    else:
        end = ""
    flags = "(?is)" if _is_prose(pattern) else "(?s)"
    return f"{flags}{start}(?:{pattern}){end}"


_METACHARACTERS = frozenset("\\.^$|?*+()[]{}")


def literal_alternation(words: list[str]) -> str:
    """Words as one alternation of literals, longest first so that none is cut short by a
    shorter one it begins with; every regex metacharacter (`type(s)`, `x.y`) is escaped."""
    escaped = ("".join(f"\\{c}" if c in _METACHARACTERS else c for c in w) for w in words)
    return "|".join(sorted(escaped, key=len, reverse=True))


@cache
def catalog_pattern(pattern: str) -> TextPattern:
    """A catalog condition, compiled under the boundary and case rules (cached)."""
    return _compile(bounded(pattern))


@cache
def raw_pattern(pattern: str) -> TextPattern:
    """A pattern compiled exactly as written (extractors and decoders state their own rules)."""
    return _compile(pattern)


def _compile(pattern: str) -> TextPattern:
    compiled: TextPattern = re2.compile(pattern)
    return compiled


def check(pattern: str) -> None:
    """Raise ValueError when RE2 cannot compile the pattern (backreference, lookaround)."""
    try:
        re2.compile(pattern)
    except re2.error as exc:
        msg = f"not a linear-time pattern {pattern!r}: {exc}"
        raise ValueError(msg) from exc
