"""Classification: message + run facts -> catalog entry and context. Pure, no I/O."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bunsui_core.diagnosis.catalog import (
    UNKNOWN_ENTRY,
    ActionPrior,
    Catalog,
    CatalogEntry,
    Extractor,
    compiled,
    load_catalog,
)
from bunsui_core.diagnosis.vocabulary import Category
from bunsui_core.model.session import FailureKind

MAX_CLASSIFIED_CHARS = 20_000

_UNITS_TO_MIB = {
    "b": 1 / 2**20,
    "bytes": 1 / 2**20,
    "kb": 1 / 1024,
    "kib": 1 / 1024,
    "mb": 1.0,
    "mib": 1.0,
    "gb": 1024.0,
    "gib": 1024.0,
    "tb": 2**20,
    "tib": 2**20,
}


class Classification(BaseModel):
    """What a failure is, what was extracted, and the catalog's ranked remediations."""

    error_code: str = Field(description="Stable catalog code, UNKNOWN when not recognised.")
    category: Category = Field(description="Failure category.")
    transient: bool = Field(description="Likely to pass if simply retried later.")
    recoverable: bool = Field(
        description="bunsui can fix it without a human changing code, data or permissions."
    )
    description: str = Field(description="What this error code means.")
    context: dict[str, Any] = Field(description="Values from the message and the run.")
    priors: list[ActionPrior] = Field(description="Remediations with prior confidences.")


def _convert(extractor: Extractor, groups: dict[str, str | None]) -> Any:
    raw = groups["value"] or ""
    if extractor.type == "int":
        return int(raw)
    if extractor.type == "float":
        return float(raw.rstrip("."))
    if extractor.type == "mib":
        unit = (groups.get("unit") or "mib").lower()
        return round(float(raw.rstrip(".")) * _UNITS_TO_MIB.get(unit, 1.0), 1)
    return raw


def extract_context(catalog: Catalog, message: str) -> dict[str, Any]:
    """Every extractor's first match in the message."""
    found: dict[str, Any] = {}
    for extractor in catalog.extractors:
        if extractor.name in found:
            continue
        match = compiled(extractor.pattern).search(message)
        if match:
            try:
                found[extractor.name] = _convert(extractor, match.groupdict())
            except ValueError:
                continue
    return found


def _applies(
    entry: CatalogEntry, message: str, kind: FailureKind | None, context: dict[str, Any]
) -> bool:
    rule = entry.match
    if rule.kinds and kind not in rule.kinds:
        return False
    if any(context.get(key) is None for key in rule.requires):
        return False
    if rule.patterns and not any(compiled(p).search(message) for p in rule.patterns):
        return False
    return bool(rule.kinds or rule.patterns)


def classify(
    message: str,
    *,
    kind: FailureKind | None = None,
    run_context: dict[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> Classification:
    """The first catalog entry whose conditions hold; UNKNOWN (escalate) when none does.

    Run facts (exit code, limits, peak memory) win over values read from the text, which is
    untrusted and may be stale.
    """
    catalog = catalog or load_catalog()
    text = message[-MAX_CLASSIFIED_CHARS:]
    context = {**extract_context(catalog, text), **(run_context or {})}
    entry = next((e for e in catalog.entries if _applies(e, text, kind, context)), UNKNOWN_ENTRY)
    return Classification(
        error_code=entry.error_code,
        category=entry.category,
        transient=entry.transient,
        recoverable=entry.recoverable,
        description=entry.description,
        context=context,
        priors=sorted(entry.actions, key=lambda a: -a.prior),
    )
