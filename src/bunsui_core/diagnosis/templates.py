"""Templates learned from people: a labelled message, its variable parts masked, recognised again.

`bunsui error label` stores the template of a message (numbers, ids, paths, URLs, addresses,
quoted values masked as `<*>`) with the category and first action a person gave it. A later
message with the same template is recognised with that label; the confidence is the mean of
a Beta posterior over how often people agreed on that template.

A template must not be general enough to capture unrelated failures: the local engine's
outcome (exit code, signal, timeout) is kept exactly, never masked, so a label given to an
exit 1 cannot answer for an exit 137; quoted prose is kept (only quoted single values are
masked), so two JSON errors do not collapse into `{<*>: <*>}`; and a message that keeps fewer
than MIN_FIXED_WORDS words of its own text outside bunsui's headline has no template at all.

Masking is done here rather than with drain3: drain3 clusters a stream of log lines into
evolving templates, while a label needs one stable template per message, and drain3's state
persistence depends on jsonpickle, which a store of untrusted text must not load.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bunsui_core.diagnosis.patterns import raw_pattern
from bunsui_core.diagnosis.run_facts import ENGINE_HEADLINE, job_output

WILDCARD = "<*>"
TEMPLATE_LINES = 3
MAX_TEMPLATE_CHARS = 2_000
MIN_FIXED_WORDS = 2
"""Words of the message's own text a template keeps unmasked, at least (`Error: <*>` has one)."""
LABEL_PRIOR = 0.8
LABEL_PRIOR_WEIGHT = 2.0
"""A person's label starts at 0.8 and counts as much as two observations; agreement and
disagreement among people move it from there."""

# Most specific first: a URL is masked whole before its path or host would be.
VARIABLE_PARTS: tuple[str, ...] = (
    r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+",
    r"\barn:aws[a-z-]*:[^\s'\"<>,;]+",
    r"\b\d{4}-\d{2}-\d{2}[T ][\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?",
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",
    r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b",
    r"'[^'\s]{1,200}'|\"[^\"\s]{1,200}\"",
    r"(?:[A-Za-z]:)?(?:[/\\][\w.@+~-]+){2,}[/\\]?",
    r"\b0x[0-9a-fA-F]+\b",
    r"\b[0-9a-f]{12,}\b",
    r"\b[a-z]+-[0-9a-f]{6,}\b",
    r"\b\d+(?:\.\d+)?(?:[kKMGT]i?B|ms|s)?\b",
)


def _engine_outcome(text: str) -> tuple[str, str]:
    """(the engine's outcome as the template keeps it, the text the job or the OS wrote)."""
    found = raw_pattern(ENGINE_HEADLINE).search(text)
    if found is None:
        return "", text
    groups = found.groupdict()
    if groups["code"] is not None:
        outcome = f"Command exited with code {groups['code']}"
    elif groups["signal"] is not None:
        outcome = f"Command was killed by signal {groups['signal']}"
    elif groups["timeout"] is not None:
        outcome = "Command timed out"
    else:
        outcome = "Command could not be started:"
    return outcome, f"{groups['spawn'] or ''}\n{job_output(text)}"


def _masked(text: str) -> str:
    """First and last lines, variable parts masked."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    kept = lines[:1] + lines[-(TEMPLATE_LINES - 1) :] if len(lines) > TEMPLATE_LINES else lines
    masked = "\n".join(kept)[-MAX_TEMPLATE_CHARS:]
    for mask in VARIABLE_PARTS:
        masked = raw_pattern(mask).sub(WILDCARD, masked)  # type: ignore[attr-defined]
    return masked


def _shape(message: str) -> tuple[str, int]:
    """(the template, how many words of the message's own text it keeps)."""
    outcome, own = _engine_outcome(message[-MAX_TEMPLATE_CHARS * 4 :])
    masked = _masked(own)
    fixed = len(raw_pattern(r"[A-Za-z]{2,}").findall(masked.replace(WILDCARD, " ")))  # type: ignore[attr-defined]
    return " ".join(f"{outcome}\n{masked}".split()), fixed


def template_of(message: str) -> str:
    """The message's shape: the engine's outcome, the first and last lines of what the job
    wrote with variable parts masked, spaces collapsed."""
    return _shape(message)[0]


def label_template(message: str) -> str | None:
    """The template a label of this message is kept under; None when it keeps too little of
    the message's own text to tell it from unrelated failures."""
    template, fixed = _shape(message)
    return template if fixed >= MIN_FIXED_WORDS else None


@dataclass(frozen=True)
class LabelVote:
    """One person's label for a template."""

    template: str
    category: str
    action: str


@dataclass(frozen=True)
class LearnedMatch:
    """The label people gave this template, and how sure that makes us."""

    category: str
    action: str
    confidence: float
    agreeing: int
    disagreeing: int


def recognise(message: str, votes: list[LabelVote]) -> LearnedMatch | None:
    """The majority label among votes for this message's template, or None when none match."""
    template = label_template(message)
    matching = [v for v in votes if v.template == template] if template else []
    if not matching:
        return None
    tally = Counter((v.category, v.action) for v in matching)
    (category, action), agreeing = tally.most_common(1)[0]
    disagreeing = len(matching) - agreeing
    confidence = (LABEL_PRIOR * LABEL_PRIOR_WEIGHT + agreeing) / (
        LABEL_PRIOR_WEIGHT + agreeing + disagreeing
    )
    return LearnedMatch(category, action, round(confidence, 3), agreeing, disagreeing)
