"""The error catalog: loaded from `catalog.yaml`, validated, patterns compiled once.

`taxonomy.yaml` uses the same entry schema for the codes the standard-taxonomy and run-facts
layers answer with; `definition()` finds a code in either.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bunsui_core.diagnosis import patterns
from bunsui_core.diagnosis.vocabulary import Category, RecoveryAction
from bunsui_core.model.session import FailureKind

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")
UNKNOWN = "UNKNOWN"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _extractor_source(pattern: str) -> str:
    """Extractors read values from prose: case-insensitive, `.` spans lines."""
    return f"(?is){pattern}"


class Extractor(_Strict):
    """Pulls one context value out of a message."""

    name: str
    pattern: str
    type: Literal["int", "float", "str", "mib"]

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        patterns.check(_extractor_source(value))
        return value

    def search(self, text: str) -> patterns.TextMatch | None:
        """The first place this extractor's pattern matches."""
        return patterns.raw_pattern(_extractor_source(self.pattern)).search(text)


class Match(_Strict):
    """Conditions that must all hold for an entry to apply.

    `patterns`: any of them matches (under the boundary and case rules of `patterns.py`);
    `unless`: none of them matches; `requires`: these context keys are set; `kinds`: the
    engine observed one of these failure kinds.
    """

    kinds: list[FailureKind] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    unless: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)

    @field_validator("patterns", "unless")
    @classmethod
    def _valid_regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            patterns.check(patterns.bounded(pattern))
        return value

    @property
    def text_based(self) -> bool:
        """Decided by what the message says, not only by run facts."""
        return bool(self.patterns)

    @property
    def run_backed(self) -> bool:
        """Holds only with what the engine observed (a failure kind, a limit it set)."""
        return bool(self.kinds or self.requires)


class ActionPrior(_Strict):
    """A remediation and the confidence it starts with."""

    action: RecoveryAction
    prior: float = Field(ge=0, le=1)


class CatalogEntry(_Strict):
    """One recognised failure."""

    error_code: str = Field(pattern=r"^[A-Z][A-Z0-9_]+$")
    category: Category
    transient: bool
    recoverable: bool
    description: str
    match: Match = Field(default_factory=Match)
    also: list[Match] = Field(
        default_factory=list, description="Alternative conditions, each enough on its own."
    )
    after: Literal["taxonomy", "model"] | None = Field(
        default=None,
        description="Answer only when the layers up to this one did not (a bare exit status).",
    )
    actions: list[ActionPrior] = Field(min_length=1)


class Catalog(_Strict):
    """The whole file."""

    version: int
    extractors: list[Extractor]
    entries: list[CatalogEntry]

    @field_validator("entries")
    @classmethod
    def _unique_codes(cls, value: list[CatalogEntry]) -> list[CatalogEntry]:
        codes = [e.error_code for e in value]
        bad = {c for c in codes if codes.count(c) > 1 or c == UNKNOWN}
        if bad:
            msg = f"duplicate or reserved error codes: {sorted(bad)}"
            raise ValueError(msg)
        return value


UNKNOWN_ENTRY = CatalogEntry(
    error_code=UNKNOWN,
    category=Category.UNKNOWN,
    transient=False,
    recoverable=False,
    description="Not recognised: a human should look before anything is retried.",
    match=Match(),
    actions=[ActionPrior(action=RecoveryAction.ESCALATE, prior=0.5)],
)


class CodeBook(_Strict):
    """Codes defined without match conditions (the taxonomy and run-facts layers' answers)."""

    version: int
    entries: list[CatalogEntry]


def _read_yaml(path: Path) -> Any:
    import yaml  # noqa: PLC0415 - only commands that classify pay for the YAML parser

    # libyaml's safe loader when present: the pure-Python one costs every `error classify`
    # process several times as much, for the same data.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(path.read_text(encoding="utf-8"))
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The validated catalog (cached: it is read once per process)."""
    return Catalog.model_validate(_read_yaml(path))


@cache
def load_taxonomy_codes(path: Path = TAXONOMY_PATH) -> dict[str, CatalogEntry]:
    """The taxonomy layer's codes by name (cached)."""
    book = CodeBook.model_validate(_read_yaml(path))
    return {entry.error_code: entry for entry in book.entries}


def definition(code: str, catalog: Catalog | None = None) -> CatalogEntry | None:
    """A code's entry from the catalog or the taxonomy codes; None when neither has it."""
    for entry in (catalog or load_catalog()).entries:
        if entry.error_code == code:
            return entry
    return load_taxonomy_codes().get(code)
