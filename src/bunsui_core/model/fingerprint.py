"""Error fingerprints: the same failure in different runs hashes the same.

Numbers, hex ids, quoted values, paths and timestamps vary between runs of one failure, so
they are masked before hashing; what remains is the shape of the message.
"""

from __future__ import annotations

import hashlib
import re

_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?"), "<ts>"),
    (re.compile(r"\b(?:ses|err|tkt|plan|rerun)-[0-9a-f]+\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<hex>"),
    (re.compile(r"(?:/[\w.@+-]+)+"), "<path>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)

FINGERPRINT_LINES = 3


def normalize_message(message: str) -> str:
    """The message's first and last lines with run-specific values masked."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    kept = (
        lines[:1] + lines[-(FINGERPRINT_LINES - 1) :] if len(lines) > FINGERPRINT_LINES else lines
    )
    text = "\n".join(kept)
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text.strip().lower()


def fingerprint_of(message: str) -> str:
    """A short stable hash of the normalized message."""
    return "fp-" + hashlib.sha256(normalize_message(message).encode()).hexdigest()[:16]
