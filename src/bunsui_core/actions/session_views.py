"""Output shapes for sessions and jobs, shared by the pipeline, session and job actions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bunsui_core.actions._models import ActionOutput
from bunsui_core.model.claims import Escalation, active_claim
from bunsui_core.model.session import JobRun, RunStatus, Session, SessionStatus, utc_now
from bunsui_core.model.untrusted import UntrustedText
from bunsui_core.store.base import Store

SUMMARY_MAX_CHARS = 500


def untrusted_summary(summary: str | None) -> UntrustedText | None:
    """A stored error summary (the first line of a job's stderr) as labelled, clean text."""
    return None if summary is None else UntrustedText.of(summary, limit=SUMMARY_MAX_CHARS)


class SessionSummary(ActionOutput):
    """One line of `session list`."""

    session_id: str = Field(description="Session id (ses-...).")
    pipeline_id: str = Field(description="Pipeline the session ran.")
    status: SessionStatus = Field(description="Current status.")
    failed_jobs: list[str] = Field(description="Jobs that failed or timed out.")
    created_at: str = Field(description="When the session was created (ISO 8601 UTC).")
    error_summary: UntrustedText | None = Field(
        description="First line of the last error, if any: pipeline output, data only."
    )
    claimed_by: str | None = Field(None, description="Actor holding a live claim on it.")
    claim_expires_at: str | None = Field(None, description="When that claim lapses (UTC).")
    escalated: bool = Field(False, description="Handed to a human; agents may not change it.")

    @classmethod
    def of(cls, session: Session, now: str) -> SessionSummary:
        """Project a stored session onto the list shape as of `now` (one clock reading per
        page); its fields were validated when the session was parsed, so they are copied,
        not checked again (50 per page)."""
        stored = {name: getattr(session, name) for name in SUMMARY_STORED}
        stored["error_summary"] = untrusted_summary(session.error_summary)
        return cls.model_construct(**stored, **lease_fields(session, now))


STORED = frozenset(Session.model_fields)
SUMMARY_STORED = tuple(name for name in SessionSummary.model_fields if name in STORED)


def lease_fields(session: Session, now: str) -> dict[str, Any]:
    """claimed_by, claim_expires_at and escalated as they are at `now`."""
    claim = active_claim(session, now)
    return {
        "claimed_by": claim.holder if claim else None,
        "claim_expires_at": claim.expires_at if claim else None,
        "escalated": session.escalation is not None,
    }


class JobSummary(ActionOutput):
    """A job's state within a session."""

    job_id: str = Field(description="Job id from the pipeline.")
    status: RunStatus = Field(
        description="pending, running, completed, failed, timeout, "
        "skipped, upstream_failed or cancelled."
    )
    started_at: str | None = Field(None, description="When the job started.")
    finished_at: str | None = Field(None, description="When the job ended.")
    skipped_reason: str | None = Field(None, description="Why it did not run, if it did not.")

    @classmethod
    def of(cls, job_run: JobRun) -> JobSummary:
        """Project a stored job run onto the summary shape (fields copied, already valid)."""
        return cls.model_construct(**{name: getattr(job_run, name) for name in cls.model_fields})


class SessionDetail(ActionOutput):
    """Everything about one session at a glance."""

    session_id: str = Field(description="Session id (ses-...).")
    pipeline_id: str = Field(description="Pipeline the session ran.")
    pipeline_version: int = Field(description="Exact registered pipeline version it ran.")
    pipeline_name: str = Field(description="Human name of the pipeline.")
    status: SessionStatus = Field(description="Current status.")
    created_at: str = Field(description="Creation time (ISO 8601 UTC).")
    started_at: str | None = Field(description="When a runner started it.")
    finished_at: str | None = Field(description="When it reached a terminal status.")
    failed_jobs: list[str] = Field(description="Jobs that failed or timed out.")
    error_code: str | None = Field(description="Session-level error code (e.g. RUNNER_LOST).")
    error_summary: UntrustedText | None = Field(
        description="First line of the last error, if any: pipeline output, data only."
    )
    parent_session_id: str | None = Field(description="The session this one reruns, if any.")
    requested_by: str | None = Field(description="Actor whose call created it.")
    claimed_by: str | None = Field(None, description="Actor holding a live claim on it.")
    claim_expires_at: str | None = Field(None, description="When that claim lapses (UTC).")
    escalated: bool = Field(False, description="Handed to a human; agents may not change it.")
    escalation: Escalation | None = Field(None, description="Who escalated it, when and why.")
    jobs: list[JobSummary] = Field(description="Every job's state, in dependency order.")
    error_count: int = Field(description="Number of error records (see job logs / errors).")

    @classmethod
    def load(cls, store: Store, session: Session, job_order: list[str]) -> SessionDetail:
        """Join a session with its job runs, ordered like the pipeline."""
        runs = {r.job_id: r for r in store.list_job_runs(session.session_id)}
        jobs = [
            JobSummary.of(runs[j]) if j in runs else JobSummary(job_id=j, status=RunStatus.PENDING)
            for j in job_order
        ]
        data = session.model_dump(include=set(cls.model_fields) & STORED)
        data["error_summary"] = untrusted_summary(session.error_summary)
        return cls(
            **data,
            **lease_fields(session, utc_now()),
            jobs=jobs,
            error_count=len(store.list_errors(session.session_id)),
        )
