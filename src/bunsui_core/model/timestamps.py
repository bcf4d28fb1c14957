"""bunsui's stored timestamps: fixed-width ISO 8601 UTC text, so that text order is time
order in every store, and the two sums done on them (a deadline, an age)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> str:
    """The current time as stored text."""
    return datetime.now(UTC).strftime(UTC_FORMAT)


def parse_utc(timestamp: str) -> datetime:
    """A stored timestamp as an aware datetime."""
    return datetime.strptime(timestamp, UTC_FORMAT).replace(tzinfo=UTC)


def shifted(timestamp: str, by: timedelta) -> str:
    """`timestamp` moved by `by` (a deadline, a window's start), as stored text."""
    return (parse_utc(timestamp) + by).strftime(UTC_FORMAT)


def seconds_between(earlier: str, later: str) -> float:
    """Seconds from `earlier` to `later` (negative when it is the other way)."""
    return (parse_utc(later) - parse_utc(earlier)).total_seconds()
