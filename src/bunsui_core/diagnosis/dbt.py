"""Diagnosis of dbt jobs: what a failed node or a failed dbt invocation means.

The engine records one error per failed node with the node's facts (`dbt_*` keys in the
context). A failed test is DATA on its parent model, with its failing-row count and the query
that shows the rows; compilation and parsing errors are APPLICATION / CONFIGURATION with the
file and line; a ref or source that does not exist is DEPENDENCY. A database error is not
dbt's own: it returns None here and goes through the general, driver-aware path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bunsui_core.diagnosis.catalog import ActionPrior
from bunsui_core.diagnosis.classifier import Classification
from bunsui_core.diagnosis.loads import classify_load
from bunsui_core.diagnosis.vocabulary import Category, Layer, RecoveryAction
from bunsui_core.model.session import FailureKind

_MISSING = re.compile(
    r"(?:Model|Test|Snapshot|Seed|Analysis|Exposure|Metric) '(?P<node>[^']+)' \((?P<file>[^)]+)\)"
    r" depends on a (?P<kind>node|source) named '(?P<name>[^']+)'"
    r"(?: with version '[^']+')? which was not found",
)
_IN_NODE = re.compile(r"Compilation Error in \w+ (?P<node>\S+) \((?P<file>[^)]+)\)")
_LINE = re.compile(r"\bline (?P<line>\d+)\b")
_PARSE_FILE = re.compile(r"Error reading [\w.-]+: (?P<file>\S+?) - ")


def _entry(
    code: str,
    category: Category,
    description: str,
    context: dict[str, Any],
    actions: list[tuple[RecoveryAction, float]],
) -> Classification:
    return Classification(
        error_code=code,
        category=category,
        transient=False,
        recoverable=False,
        description=description,
        context=context,
        priors=[ActionPrior(action=a, prior=p) for a, p in actions],
        layer=Layer.CATALOG,
        confidence=0.95,
        evidence=f"dbt: {code}",
    )


def classify_dbt(message: str, context: Mapping[str, Any]) -> Classification | None:
    """The dbt meaning of an error of a dbt job, or None (not a dbt job, or a database
    error the general path classifies)."""
    if "dbt_command" not in context:
        return None
    facts = dict(context)
    if facts.get("dbt_resource_type") == "test" and facts.get("dbt_status") == "fail":
        return _entry(
            "DBT_TEST_FAILED",
            Category.DATA,
            "A dbt test found rows that break it: the data of its model is wrong (or the "
            "test is). failing_rows_query shows the rows.",
            facts,
            [(RecoveryAction.FIX_CODE_OR_DATA, 0.8), (RecoveryAction.ESCALATE, 0.5)],
        )
    missing = _MISSING.search(message)
    if missing:
        facts.update(
            missing_ref=missing["name"],
            missing_kind="source" if missing["kind"] == "source" else "ref",
            file=missing["file"],
            model=missing["node"].rsplit(".", 1)[-1],
        )
        return _entry(
            "DBT_MISSING_REF",
            Category.DEPENDENCY,
            "A model refers (ref/source) to a node the dbt project does not define.",
            facts,
            [(RecoveryAction.FIX_CODE_OR_DATA, 0.75), (RecoveryAction.ESCALATE, 0.4)],
        )
    if "Compilation Error" in message:
        facts.update(_location(message, _IN_NODE))
        return _entry(
            "DBT_COMPILATION_ERROR",
            Category.APPLICATION,
            "dbt could not compile a model's Jinja/SQL: the code at file and line needs a fix.",
            facts,
            [(RecoveryAction.FIX_CODE_OR_DATA, 0.8), (RecoveryAction.ESCALATE, 0.4)],
        )
    if "Parsing Error" in message:
        facts.update(_location(message, _PARSE_FILE))
        return _entry(
            "DBT_PARSING_ERROR",
            Category.CONFIGURATION,
            "dbt could not parse a project file (YAML or config): fix it at file and line.",
            facts,
            [(RecoveryAction.FIX_CONFIGURATION, 0.8), (RecoveryAction.ESCALATE, 0.4)],
        )
    return None


def _location(message: str, file_pattern: re.Pattern[str]) -> dict[str, Any]:
    """The file (and node) an error names, and its line when dbt gives one."""
    found: dict[str, Any] = {}
    where = file_pattern.search(message)
    if where:
        found["file"] = where["file"]
        if "node" in where.groupdict():
            found["model"] = where["node"]
    line = _LINE.search(message, where.end() if where else 0)
    if line:
        found["line"] = int(line["line"])
    return found


def recognize(
    message: str, kind: FailureKind | None, context: dict[str, Any]
) -> Classification | None:
    """The classifier's domain plug-in (RECOGNIZER_MODULES): dbt failures and loads' bad rows
    wherever text is classified, not only in a session's analysis."""
    del kind  # dbt's meaning is in the text and the node facts, not in how the process ended
    return classify_dbt(message, context) or classify_load(message, context)
