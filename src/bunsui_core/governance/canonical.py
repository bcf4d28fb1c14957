"""Canonical argument text and hashes: what a ticket binds and an audit entry records."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

SECRET_KEY = re.compile(r"token|password|passwd|secret|key|credential", re.IGNORECASE)
NOT_SECRET = frozenset({"idempotency_key"})
REDACTED = "[redacted]"


SURROGATES = re.compile("[\ud800-\udfff]")


def exceeds(value: Any, budget: int) -> bool:
    """Whether the text in `value` (strings, keys, one unit per other leaf) passes `budget`
    characters; stops as soon as it does, so a huge argument costs little to refuse."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            budget -= len(item)
        elif isinstance(item, Mapping):
            budget -= len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            budget -= len(item) + 1
            stack.extend(item)
        else:
            budget -= 1
        if budget < 0:
            return True
    return False


def lone_surrogate_at(value: Any, location: str = "") -> str | None:
    """Where text that is not valid Unicode (a lone surrogate, which JSON can carry) sits in
    the arguments, or None: such text can be neither stored nor hashed."""
    if isinstance(value, str):
        return location or "(root)" if SURROGATES.search(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{location}.{key}" if location else str(key)
            found = lone_surrogate_at(key, where) or lone_surrogate_at(item, where)
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{location}[{index}]")
            if found:
                return found
    return None


def map_strings(value: Any, transform: Callable[[str], str]) -> Any:
    """The same JSON-like value with `transform` applied to every string in it, mapping keys
    included (tuples come back as lists)."""
    if isinstance(value, str):
        return transform(value)
    if isinstance(value, Mapping):
        return {map_strings(k, transform): map_strings(v, transform) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, transform) for v in value]
    return value


def scrub_surrogates(value: Any) -> Any:
    """The same value with lone surrogates replaced by U+FFFD, for the audit entry of a call
    refused for containing them."""
    return map_strings(value, lambda text: SURROGATES.sub("\ufffd", text))


def canonical_text(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text in every process."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    """Hex sha256 of UTF-8 text."""
    return hashlib.sha256(text.encode()).hexdigest()


def redact(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments with secret-looking values replaced, at any depth, before hashing or storing
    them in the audit log (so a token never lands in a log that must be kept forever)."""
    return {
        key: REDACTED
        if SECRET_KEY.search(key) and key not in NOT_SECRET
        else redact(value)
        if isinstance(value, Mapping)
        else value
        for key, value in arguments.items()
    }


AUDIT_TEXT_CHARS = 256
"""Longest text an audit entry keeps verbatim; longer text keeps its start and its sha256."""

AUDIT_ITEMS = 64
"""Most keys or items an audit entry keeps of one mapping or list."""


def capped(value: Any) -> Any:
    """A bounded copy of arguments for the audit log, which is kept forever: long text keeps
    its first characters plus its length and sha256, long mappings and lists their first
    items (the entry's `arguments_hash` still covers the whole call)."""
    if isinstance(value, str):
        if len(value) <= AUDIT_TEXT_CHARS:
            return value
        return f"{value[:AUDIT_TEXT_CHARS]}...[{len(value)} chars, sha256 {sha256_text(value)}]"
    if isinstance(value, Mapping):
        items = list(value.items())
        kept = {capped(str(k)): capped(v) for k, v in items[:AUDIT_ITEMS]}
        if len(items) > AUDIT_ITEMS:
            kept["..."] = f"{len(items) - AUDIT_ITEMS} more keys"
        return kept
    if isinstance(value, list | tuple):
        kept_items = [capped(v) for v in value[:AUDIT_ITEMS]]
        if len(value) > AUDIT_ITEMS:
            kept_items.append(f"... {len(value) - AUDIT_ITEMS} more items")
        return kept_items
    return value


SECRET_VALUE = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|(?i:bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}"  # bearer tokens in headers or commands
    r"|(?i:aws_secret_access_key|secret_key|password|passwd|token)\s*[=:]\s*\S+"
)
"""Secrets inside text (a command line, a URL), whatever key they are under."""


def redact_secrets(value: Any) -> Any:
    """A definition shown to an agent, with secret-looking values replaced: any value under
    a key that looks like TOKEN/SECRET/PASSWORD/KEY/CREDENTIAL, and AWS keys and bearer
    tokens inside any text (an env value, an argv item)."""
    if isinstance(value, str):
        return SECRET_VALUE.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str)
            and SECRET_KEY.search(key)
            and key not in NOT_SECRET
            and not isinstance(item, Mapping | list)
            else redact_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_secrets(item) for item in value]
    return value


def arguments_hash(arguments: Mapping[str, Any]) -> str:
    """The hash an audit entry records: of redacted, canonical arguments (a log kept forever
    must not let anyone confirm a guessed secret)."""
    return sha256_text(canonical_text(redact(arguments)))


def binding_hash(arguments: Mapping[str, Any]) -> str:
    """The hash a ticket binds: of the exact canonical arguments, secrets included, so a
    request with a different secret is a different request needing its own approval."""
    return sha256_text(canonical_text(dict(arguments)))
