"""What people decided about an insight: applied (with the baseline to judge it by) or dismissed.

Insights themselves are recomputed from run history on every read; only these decisions
are stored, keyed by the insight's stable id.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.model.session import utc_now


class InsightStatus(StrEnum):
    """Where an insight stands: open until someone applies or dismisses it."""

    OPEN = "open"
    APPLIED = "applied"
    DISMISSED = "dismissed"


class InsightVerdict(StrEnum):
    """Whether an applied change did what it promised, judged on the runs after it."""

    HELPED = "helped"
    DID_NOT_HELP = "did_not_help"


class InsightState(BaseModel):
    """The stored decision on one insight; `snapshot` is the insight as it was decided on."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    insight_id: str
    pipeline_id: str
    rule: str
    status: InsightStatus
    actor: str
    reason: str | None = None
    updated_at: str = Field(default_factory=utc_now)
    snapshot: dict[str, Any] = Field(default_factory=dict)
    applied_at: str | None = None
    applied_version: int | None = None
    baseline: dict[str, float] = Field(default_factory=dict)
    verdict: InsightVerdict | None = None
    verdict_runs: int = 0
    verdict_at: str | None = None
