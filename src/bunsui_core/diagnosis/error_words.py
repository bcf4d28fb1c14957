"""Does a text read as a failure report at all? The learned model judges only text that does.

The model's probability cannot tell an unfamiliar failure from text that reports none: "the
flux capacitor is sad" scores higher than many real messages of families it never saw, its
letter sequences resembling "capacity". So, beside its probability, the model needs the
text to use the words failures are reported with (English and the error vocabularies'
own: `error`, `failed`, `denied`, `timeout`, `cannot`, `exceeded`, ...), in prose or inside an
identifier (`ConnectionRefusedError`, `QUOTA_EXCEEDED`). The list is the language's, written
from no corpus line; text without any of them is `UNKNOWN` with the model's hypothesis.
"""

from __future__ import annotations

from bunsui_core.diagnosis.text_features import words

WORDS = frozenset(
    {
        # negation and inability, as failures are stated
        "no",
        "not",
        "cannot",
        "unable",
        "couldn",
        "doesn",
        "didn",
        "isn",
        "wasn",
        "aren",
        "hasn",
        "haven",
        "won",
        "wouldn",
        "shouldn",
        "never",
        "none",
        # what went wrong
        "bad",
        "wrong",
        "incorrect",
        "missing",
        "unknown",
        "lost",
        "broken",
        "full",
        "oom",
        "err",
        "errno",
        "exit",
        "exited",
        "kill",
        "killed",
        "reset",
        "limit",
        "limits",
        "quota",
        "timed",
        "traceback",
        "panic",
        "fatal",
        "died",
        "dead",
        "down",
        "stuck",
        "hung",
    }
)
STEMS = (
    "error",
    "exception",
    "fail",
    "fault",
    "abort",
    "crash",
    "refus",
    "reject",
    "denied",
    "deny",
    "invalid",
    "illegal",
    "corrupt",
    "malformed",
    "unauthori",
    "unauthenticat",
    "forbid",
    "throttl",
    "exceed",
    "expire",
    "terminat",
    "interrupt",
    "violat",
    "timeout",
    "unreachable",
    "unavailable",
    "unsupported",
    "unexpected",
    "unrecogni",
    "unresolv",
    "insufficient",
    "exhaust",
    "deadlock",
    "conflict",
    "mismatch",
    "overflow",
    "disconnect",
    "unhandled",
    "undefined",
    "segfault",
    "assert",
)


def reads_as_failure(text: str) -> bool:
    """Whether any word of the text (or of an identifier in it) is one failures are told in."""
    return any(word in WORDS or word.startswith(STEMS) for word in words(text))
