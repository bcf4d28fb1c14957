"""Run facts: what the exit itself says (OOM kill, SIGKILL, SIGSEGV, a shell's 126/127).

The engine's measurements come first; a message that only reports an exit status (`exit code
137 (SIGKILL, possible container OOM)`) is read the same way.
"""

from __future__ import annotations

from typing import Any

from bunsui_core.diagnosis.patterns import raw_pattern
from bunsui_core.model.session import FailureKind

OOM_PEAK_SHARE = 0.9
"""A kill with the peak at 90% of the limit or more is the limit's doing, not a stray kill."""
SIGKILL_STATUS = 137
SIGSEGV_STATUS = 139
SHELL_STATUSES = {127: "MISSING_EXECUTABLE", 126: "PERMISSION_DENIED"}
"""POSIX shells: 127 when the command was not found, 126 when it was found but not executable."""
_SIGKILL_TEXT = r"\bSIGKILL\b|(?i:\bsignal:? 9\b|\bsignal: killed\b|\bkilled by signal 9\b)"
_SIGSEGV_TEXT = r"\bSIGSEGV\b|(?i:\bsegmentation fault\b|\bsignal:? 11\b)"
ENGINE_HEADLINE = (
    r"(?m)^Command (?:exited with code (?P<code>-?\d+)|was killed by signal (?P<signal>[A-Z0-9]+)|"
    r"(?P<timeout>timed out) after [\d.]+ seconds and was killed|"
    r"could not be started: (?P<spawn>[^\n]*))"
    r"(?: \(memory limit \d+ MiB, peak RSS [\d.]+ MiB\))?$"
)
"""The local engine's own first line (engine/local.py `describe_failure`)."""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _killed(kind: FailureKind | None, context: dict[str, Any]) -> bool:
    return (
        context.get("exit_code") == SIGKILL_STATUS
        or context.get("signal") == 9
        or context.get("signal_name") == "SIGKILL"
        or (kind is FailureKind.KILLED_BY_SIGNAL and context.get("signal") in (None, 9))
    )


def derive(kind: FailureKind | None, context: dict[str, Any]) -> dict[str, Any]:
    """Facts computed from measured ones: `oom_killed`, `lambda_memory_exhausted`."""
    derived: dict[str, Any] = {}
    limit = _number(context.get("memory_limit_mb"))
    peak = _number(context.get("peak_rss_mb"))
    if context.get("oom_killed") is True or (
        limit and peak is not None and peak >= OOM_PEAK_SHARE * limit and _killed(kind, context)
    ):
        derived["oom_killed"] = True
    size = _number(context.get("lambda_memory_size_mb"))
    used = _number(context.get("lambda_max_memory_used_mb"))
    if size and used is not None and used >= size:
        derived["lambda_memory_exhausted"] = True
    return derived


def exit_status_code(kind: FailureKind | None, context: dict[str, Any], text: str) -> str | None:
    """KILLED_SIGKILL, SEGMENTATION_FAULT or a shell's status code when the exit status says
    so, else None."""
    if kind is FailureKind.KILLED_BY_SIGNAL:
        return None  # the catalog's LOCAL_KILLED_BY_SIGNAL carries the engine's own kill
    if _killed(None, context) or raw_pattern(_SIGKILL_TEXT).search(text):
        return "KILLED_SIGKILL"
    if (
        context.get("exit_code") == SIGSEGV_STATUS
        or context.get("signal") == 11
        or raw_pattern(_SIGSEGV_TEXT).search(text)
    ):
        return "SEGMENTATION_FAULT"
    status = context.get("exit_code")
    return SHELL_STATUSES.get(status) if isinstance(status, int) else None


def job_output(text: str) -> str:
    """The text without the local engine's own headline: what the job wrote, never bunsui's
    wording (which would make every failure with a memory limit look like a memory failure)."""
    stripped = raw_pattern(ENGINE_HEADLINE).sub("", text)  # type: ignore[attr-defined]
    return str(stripped).strip()
