"""Diagnosis of `duckdb_load` jobs: rows of the input file the warehouse could not take.

The load's child process reports bad rows as `duckdb_load: N bad row(s) in FILE at line(s)
L1, L2; nothing was loaded` followed by one line per row; that is DATA, with the file and
line numbers in the context, and a person fixes the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bunsui_core.diagnosis.catalog import ActionPrior
from bunsui_core.diagnosis.classifier import Classification
from bunsui_core.diagnosis.vocabulary import Category, Layer, RecoveryAction

_BAD_ROWS = re.compile(
    r"duckdb_load: (?P<count>\d+) bad row\(s\) in (?P<file>.+?) at line\(s\) (?P<lines>[\d, ]+);"
)


def classify_load(message: str, context: Mapping[str, Any]) -> Classification | None:
    """LOAD_BAD_ROWS for a load that rejected rows, else None."""
    found = _BAD_ROWS.search(message)
    if found is None:
        return None
    lines = [int(n) for n in found["lines"].replace(" ", "").split(",") if n]
    return Classification(
        error_code="LOAD_BAD_ROWS",
        category=Category.DATA,
        transient=False,
        recoverable=False,
        description="Rows of the input file do not fit the table (column count or type); "
        "nothing was loaded. Fix the rows at the lines given.",
        context={
            **context,
            "bad_rows": int(found["count"]),
            "file": found["file"],
            "lines": ", ".join(map(str, lines)),
            "line": lines[0],
        },
        priors=[
            ActionPrior(action=RecoveryAction.FIX_CODE_OR_DATA, prior=0.85),
            ActionPrior(action=RecoveryAction.ESCALATE, prior=0.5),
        ],
        layer=Layer.CATALOG,
        confidence=0.95,
        evidence=found.group(0),
    )
