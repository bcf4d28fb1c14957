"""The error catalog: loaded from `catalog.yaml`, validated, regexes compiled once."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bunsui_core.diagnosis.vocabulary import Category, RecoveryAction
from bunsui_core.model.session import FailureKind

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
UNKNOWN = "UNKNOWN"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


class Extractor(_Strict):
    """Pulls one context value out of a message."""

    name: str
    pattern: str
    type: Literal["int", "float", "str", "mib"]

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        _compile(value)
        return value


class Match(_Strict):
    """Conditions that must all hold for an entry to apply."""

    kinds: list[FailureKind] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _valid_regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile(pattern)
        return value


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
    match: Match
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


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The validated catalog (cached: it is read once per process)."""
    import yaml  # noqa: PLC0415 - only commands that classify pay for the YAML parser

    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Catalog.model_validate(data)


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    """Compiled, case-insensitive regex (cached across calls)."""
    return _compile(pattern)
