"""Insights from run history: preventive, cost and performance suggestions with evidence."""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

_EXPORTS = {
    "History": "history",
    "Insight": "model",
    "InsightKind": "model",
    "PipelineChange": "tuning",
    "load_history": "history",
    "pipeline_cost": "cost",
    "pipeline_insights": "review",
    "tune_pipeline": "tuning",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "History",
    "Insight",
    "InsightKind",
    "PipelineChange",
    "load_history",
    "pipeline_cost",
    "pipeline_insights",
    "tune_pipeline",
]
