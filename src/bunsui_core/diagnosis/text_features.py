"""The learned model's features: word and character n-grams, one function for training and use.

Training (scikit-learn) and prediction (numpy) call the same `features()`, so the shipped
model sees exactly the tokens it was trained on. Linear time in the text; only the tail is
read, as for every layer.

The model reads the message, not its scaffolding: stack-frame lines (JVM `at ...(X.java:12)`,
Python `File "...", line N`, Go `file.go:12`) and variable parts (URLs, paths, ids, numbers,
quoted values, as a learned template masks them) are left out. Frames and values name the
thread's own code and data, which a family nobody has seen does not share; without them the
words of the error carry the answer (leave-one-family-out on corpus-e/f, which this was
tuned on: category 52.4% -> 54.3%, UNKNOWN 34.2% -> 30.1%; on blind corpus-g +0.7 points).
"""

from __future__ import annotations

import itertools
from functools import cache

from bunsui_core.diagnosis.patterns import TextMatch, TextPattern, raw_pattern
from bunsui_core.diagnosis.templates import VARIABLE_PARTS

MAX_FEATURE_CHARS = 4_000
CHAR_NGRAMS = (3, 5)
MIN_SUBWORD = 3
_SEPARATORS = str.maketrans(dict.fromkeys("()[]{}<>\"'`,;=|\t\r\n", " "))
_FRAME_LINE = (
    r"^\s*(?:at [\w.$<>/]+\(.*\)|File \".*\", line \d+.*|\.\.\. \d+ more|"
    r"\d+: [\w./()*]+|[\w./-]+\.go:\d+.*)\s*$"
)


@cache
def _frame_line() -> TextPattern:
    return raw_pattern(_FRAME_LINE)


_ERROR_CODE = r"\b[A-Z][A-Z0-9]*-\d+\b"
"""A vendor's numbered code (`ORA-01555`, `TNS-12541`): a word of the error, not a value."""


@cache
def _variable_part() -> TextPattern:
    """The template masks as one alternation (one linear pass, leftmost mask wins), after
    numbered codes, which are kept."""
    masks = "|".join(f"(?:{mask})" for mask in VARIABLE_PARTS)
    return raw_pattern(f"({_ERROR_CODE})|{masks}")


def _blank(match: TextMatch) -> str:
    """A numbered code stays; any other variable part becomes a space."""
    return match.group(1) or " "


def _message_text(text: str) -> str:
    """The words of the error: the tail, without stack-frame lines (unless that is all there
    is) and with variable parts blanked (numbered codes kept)."""
    lines = text[-4 * MAX_FEATURE_CHARS :].splitlines()
    kept = [line for line in lines if not _frame_line().search(line)]
    words = "\n".join(kept) if kept else "\n".join(lines)
    return str(_variable_part().sub(_blank, words))[-MAX_FEATURE_CHARS:]  # type: ignore[attr-defined]


def _raw_tokens(text: str) -> list[str]:
    """Tokens of two or more characters as written, split on anything but letters, digits,
    `.`, `_`, `:` and `-` (so `json.decoder.JSONDecodeError` and `States.Timeout` stay whole)."""
    tokens = []
    for raw in text.translate(_SEPARATORS).split():
        token = raw.strip(".:-_")
        if len(token) >= 2 and not token.replace(".", "").isdigit():
            tokens.append(token)
    return tokens


def _parts(token: str) -> list[str]:
    """A dotted name's last part (`pandas.errors.parsererror` -> `parsererror`)."""
    last = token.rsplit(".", 1)[-1]
    return [last] if last != token and len(last) >= 2 else []


def _subwords(token: str) -> list[str]:
    """The words an identifier is made of, lower-cased: camelCase, snake_case, SCREAMING_CASE
    and dotted names (`TopicAuthorizationException` -> topic, authorization, exception;
    `MEMORY_LIMIT_EXCEEDED` -> memory, limit, exceeded), so a word means the same inside a
    class name or an error code as in prose. Empty when the token is one word already."""
    words: list[str] = []
    current: list[str] = []
    for index, char in enumerate(token):
        if not char.isalpha():
            words.append("".join(current))
            current = []
            continue
        if current and char.isupper():
            previous_lower = current[-1].islower()
            next_lower = index + 1 < len(token) and token[index + 1].islower()
            if previous_lower or (current[-1].isupper() and next_lower):
                words.append("".join(current))
                current = []
        current.append(char)
    words.append("".join(current))
    found = [w.lower() for w in words if len(w) >= MIN_SUBWORD]
    return found if len(found) >= 2 else []


def words(text: str) -> list[str]:
    """The message's words, lower-cased: its tokens, dotted-name tails and identifier words."""
    return _words(_raw_tokens(_message_text(text)))


def _words(raw: list[str]) -> list[str]:
    tokens = [t.lower() for t in raw]
    tails = [p for t in tokens for p in _parts(t)]
    return tokens + tails + [s for t in raw for s in _subwords(t)]


def features(text: str) -> list[str]:
    """Every feature of the text: its words (`words`), word bigrams, char n-grams."""
    raw = _raw_tokens(_message_text(text))
    tokens = [t.lower() for t in raw]
    found = [f"w:{w}" for w in _words(raw)]
    found += [f"b:{a} {b}" for a, b in itertools.pairwise(tokens)]
    low, high = CHAR_NGRAMS
    for token in tokens:
        padded = f" {token} "
        for n in range(low, high + 1):
            found += [f"c:{padded[i : i + n]}" for i in range(max(1, len(padded) - n + 1))]
    return found
