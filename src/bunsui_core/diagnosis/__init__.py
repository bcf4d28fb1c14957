"""Diagnosis: the error catalog, the classifier, the analyzer and learning from outcomes."""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "Category": "catalog",
        "Classification": "classifier",
        "RecoveryAction": "catalog",
        "SessionAnalysis": "analyzer",
        "analyze_session": "analyzer",
        "classify": "classifier",
        "load_catalog": "catalog",
        "rank_actions": "learning",
        "record_rerun_outcome": "learning",
    },
)

__all__ = [
    "Category",
    "Classification",
    "RecoveryAction",
    "SessionAnalysis",
    "analyze_session",
    "classify",
    "load_catalog",
    "rank_actions",
    "record_rerun_outcome",
]
