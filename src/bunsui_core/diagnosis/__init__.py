"""Diagnosis: recognition in layers (run facts, taxonomies, catalog, text model, labels people
gave), the analyzer, and learning from outcomes. Domain recognizers (dbt, ...) plug in with
`register_recognizer`."""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "Category": "catalog",
        "Classification": "classifier",
        "Layer": "vocabulary",
        "RecoveryAction": "catalog",
        "SessionAnalysis": "analyzer",
        "analyze_session": "analyzer",
        "classify": "classifier",
        "load_catalog": "catalog",
        "rank_actions": "learning",
        "record_rerun_outcome": "learning",
        "register_recognizer": "classifier",
        "template_of": "templates",
    },
)

__all__ = [
    "Category",
    "Classification",
    "Layer",
    "RecoveryAction",
    "SessionAnalysis",
    "analyze_session",
    "classify",
    "load_catalog",
    "rank_actions",
    "record_rerun_outcome",
    "register_recognizer",
    "template_of",
]
