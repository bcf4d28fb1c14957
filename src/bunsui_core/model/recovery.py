"""Records of recovery: config override versions, plans, and learned resolution outcomes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bunsui_core.model.session import JobOverride, new_id, utc_now


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class OverrideVersion(_Record):
    """One version of a job's override on a session; the latest is in force for its reruns."""

    session_id: str
    job_id: str
    version: int
    override: JobOverride
    actor: str
    reason: str | None = None
    created_at: str = Field(default_factory=utc_now)


class Outcome(StrEnum):
    """How an attempted remediation turned out."""

    SUCCESS = "success"
    FAILURE = "failure"


class ResolutionSource(StrEnum):
    """Where an outcome came from: a rerun bunsui watched, or a person telling us."""

    RERUN = "rerun"
    MANUAL = "manual"


class Resolution(_Record):
    """One observed outcome of one action against one error; the learning data."""

    resolution_id: str = Field(default_factory=lambda: new_id("res"))
    fingerprint: str
    error_code: str
    action: str
    outcome: Outcome
    source: ResolutionSource
    error_id: str | None = None
    session_id: str | None = None
    actor: str | None = None
    note: str | None = None
    recorded_at: str = Field(default_factory=utc_now)


class ErrorLabel(_Record):
    """A person's verdict on an error: its category and first action, kept with the error's
    template so the next message of that shape is recognised the same way."""

    label_id: str = Field(default_factory=lambda: new_id("lbl"))
    error_id: str
    template: str
    category: str
    action: str
    actor: str
    note: str | None = None
    created_at: str = Field(default_factory=utc_now)


class ActionStats(_Record):
    """Observed outcomes of one action for one fingerprint or error code."""

    action: str
    successes: int = 0
    failures: int = 0


class PlanStep(_Record):
    """One executable step: a `bunsui ...` command line and why."""

    step: int
    action: str
    command: str
    reason: str
    requires_human: bool = False


class RecoveryPlan(_Record):
    """A ranked way out of a failure, stored so it can be executed by id."""

    plan_id: str = Field(default_factory=lambda: new_id("plan"))
    session_id: str
    job_id: str | None
    error_id: str | None
    error_code: str
    fingerprint: str | None
    action: str
    description: str
    success_probability: float
    estimated_time_minutes: float | None
    executable: bool
    steps: list[PlanStep]
    risks: list[str]
    created_at: str = Field(default_factory=utc_now)
