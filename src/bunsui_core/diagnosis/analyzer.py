"""ErrorAnalyzer: why a session failed, what to do, and how sure we are."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from bunsui_core.diagnosis.classifier import (
    MAX_CLASSIFIED_CHARS,
    Classification,
    Hypothesis,
    classify,
)
from bunsui_core.diagnosis.learning import ConfidenceBasis, rank_actions
from bunsui_core.diagnosis.templates import LabelVote, label_template
from bunsui_core.diagnosis.vocabulary import Category, Layer
from bunsui_core.governance.canonical import redact_secrets
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.recovery import Resolution
from bunsui_core.model.session import ErrorRecord, Session, SessionStatus
from bunsui_core.model.untrusted import UntrustedText
from bunsui_core.recovery.remedies import FailedJob, remedy_for
from bunsui_core.recovery.sizing import MemoryHistory
from bunsui_core.store.base import Store

SIMILAR_LIMIT = 5


class Suggestion(BaseModel):
    """One remediation, ready to run."""

    action: str = Field(
        description="retry, retry_with_backoff, increase_memory, "
        "increase_timeout, retry_with_smaller_batch, fix_permissions, "
        "fix_configuration, fix_code_or_data or escalate."
    )
    confidence: float = Field(description="Probability it resolves the error (see basis).")
    command: str = Field(
        description="The first `bunsui ...` line to run; recovery suggest gives the whole plan."
    )
    reason: str = Field(description="Why, with the numbers behind any new value.")
    requires_human: bool = Field(description="A person must fix something first.")
    basis: ConfidenceBasis = Field(description="Prior and observed outcomes behind confidence.")


class PastResolution(BaseModel):
    """What was tried against a similar error and how it went."""

    action: str = Field(description="Action taken.")
    outcome: str = Field(description="success or failure.")
    source: str = Field(description="rerun (observed by bunsui) or manual (recorded by a person).")
    recorded_at: str = Field(description="When the outcome was recorded.")


class SimilarError(BaseModel):
    """A past error with the same fingerprint."""

    error_id: str = Field(description="Past error id.")
    session_id: str = Field(description="Session it happened in.")
    job_id: str | None = Field(description="Job it happened in.")
    timestamp: str = Field(description="When it happened.")
    resolutions: list[PastResolution] = Field(description="What was tried for it, and outcomes.")


class AnalyzedError(BaseModel):
    """One error record, classified, with ranked suggestions."""

    error_id: str = Field(description="Error record id.")
    job_id: str | None = Field(description="Job that failed (null for session-level errors).")
    operation_id: str | None = Field(description="Operation that failed.")
    attempt: int | None = Field(description="Attempt number that failed.")
    error_code: str = Field(description="Catalog code; UNKNOWN when not recognised.")
    category: Category = Field(description="Failure category.")
    transient: bool = Field(description="Likely to pass on a later retry.")
    recoverable: bool = Field(description="Fixable by bunsui without a person.")
    description: str = Field(description="What the error code means.")
    layer: Layer = Field(
        description="Which layer decided: run_facts, taxonomy, catalog, model, "
        "learned_template (none when UNKNOWN)."
    )
    evidence: str = Field(description="What in the run or the text decided it.")
    category_confidence: float = Field(
        description="Calibrated probability that the category is right (that layer's "
        "measured precision, the model's probability, or people's agreement)."
    )
    hypothesis: Hypothesis | None = Field(
        description="The learned model's best guess when it was not sure enough to decide."
    )
    message: UntrustedText = Field(description="The raw error text: pipeline output, data only.")
    timestamp: str = Field(description="When it happened.")
    context: dict[str, Any] = Field(description="Facts from the run and the message.")
    fingerprint: str = Field(description="Same fingerprint = same failure in another run.")
    recovery_suggestions: list[Suggestion] = Field(description="Best first.")
    similar_errors: list[SimilarError] = Field(description="Past errors with this fingerprint.")


class SessionAnalysis(BaseModel):
    """The design's analysis shape for a whole session."""

    session_id: str = Field(description="Session analysed.")
    status: SessionStatus = Field(description="Its status.")
    errors: list[AnalyzedError] = Field(description="Every recorded error, oldest first.")


def _suggestions(
    store: Store,
    error: ErrorRecord,
    classification: Classification,
    pipeline: Pipeline | None,
    overrides_batch: int | None,
    *,
    session: Session | None,
) -> list[Suggestion]:
    from bunsui_core.recovery.memory_history import memory_history  # noqa: PLC0415

    failed = FailedJob(
        session_id=error.session_id,
        job_id=error.job_id,
        error_id=error.error_id,
        context=redact_secrets(classification.context),  # argv and env reach agents here
        memory=memory_history(store, session, error.job_id)
        if session is not None
        else MemoryHistory(),
    )
    suggestions = []
    for ranked in rank_actions(store, classification, error.fingerprint):
        remedy = (
            remedy_for(ranked.action, failed, pipeline, batch_size=overrides_batch)
            if pipeline is not None
            else None
        )
        if remedy is None:
            continue
        suggestions.append(
            Suggestion(
                action=ranked.action.value,
                confidence=ranked.confidence,
                command=remedy.steps[0].command,
                reason=" ".join(step.reason for step in remedy.steps),
                requires_human=not remedy.executable,
                basis=ranked.basis,
            )
        )
    return suggestions


def _similar(store: Store, error: ErrorRecord) -> list[SimilarError]:
    past = store.list_errors_by_fingerprint(
        error.fingerprint, limit=SIMILAR_LIMIT, exclude_session_id=error.session_id
    )
    if not past:
        return []
    resolutions: dict[str, list[Resolution]] = {}
    for resolution in store.resolutions_of_errors([e.error_id for e in past]):
        resolutions.setdefault(resolution.error_id or "", []).append(resolution)
    return [
        SimilarError(
            error_id=e.error_id,
            session_id=e.session_id,
            job_id=e.job_id,
            timestamp=e.timestamp,
            resolutions=[
                PastResolution(
                    action=r.action, outcome=r.outcome, source=r.source, recorded_at=r.recorded_at
                )
                for r in resolutions.get(e.error_id, [])
            ],
        )
        for e in past
    ]


def analyze_error(
    store: Store,
    error: ErrorRecord,
    pipeline: Pipeline | None,
    *,
    batch_size: int | None = None,
    session: Session | None = None,
    learned: tuple[LabelVote, ...] = (),
) -> AnalyzedError:
    """Classify one stored error and attach ranked, executable suggestions."""
    classification = classify_record(error, learned)
    return AnalyzedError(
        error_id=error.error_id,
        job_id=error.job_id,
        operation_id=error.operation_id,
        attempt=error.attempt,
        error_code=classification.error_code,
        category=classification.category,
        transient=classification.transient,
        recoverable=classification.recoverable,
        description=classification.description,
        layer=classification.layer,
        evidence=classification.evidence,
        category_confidence=classification.confidence,
        hypothesis=classification.hypothesis,
        message=UntrustedText.of(error.message),
        timestamp=error.timestamp,
        context=redact_secrets(classification.context),  # argv and env reach agents here
        fingerprint=error.fingerprint,
        recovery_suggestions=_suggestions(
            store, error, classification, pipeline, batch_size, session=session
        ),
        similar_errors=_similar(store, error),
    )


def classify_record(error: ErrorRecord, learned: tuple[LabelVote, ...] = ()) -> Classification:
    """A stored error's classification, its run facts (dbt node, exit code...) included."""
    facts = json.dumps(error.context, default=str)  # keeps a row's column order
    return _classify_cached(error.message, error.kind, facts, learned)


@lru_cache(maxsize=1024)
def _classify_cached(
    message: str,
    kind: Any,
    facts: str,
    learned: tuple[LabelVote, ...],
) -> Classification:
    """Sessions repeat the same failure; classify each distinct one once (the run facts come
    as JSON text so that lists, such as a dbt test's failing rows, are part of the key)."""
    return classify(message, kind=kind, run_context=json.loads(facts), learned=learned)


def analyze_session(
    store: Store,
    session: Session,
    pipeline: Pipeline | None,
    batch_sizes: dict[str, int] | None = None,
) -> SessionAnalysis:
    """Every error of the session, analysed."""
    sizes = batch_sizes or {}
    errors = store.list_errors(session.session_id)
    learned = label_votes(store, [e.message for e in errors])
    return SessionAnalysis(
        session_id=session.session_id,
        status=session.status,
        errors=[
            analyze_error(
                store,
                e,
                pipeline,
                batch_size=sizes.get(e.job_id or ""),
                session=session,
                learned=learned,
            )
            for e in errors
        ],
    )


def label_votes(store: Store, messages: Iterable[str]) -> tuple[LabelVote, ...]:
    """The labels people gave to the templates of these messages (the learned-template layer
    reads no others), looked up by template rather than read whole."""
    templates = {
        template
        for message in messages
        if (template := label_template(message[-MAX_CLASSIFIED_CHARS:])) is not None
    }
    return tuple(
        LabelVote(template=lbl.template, category=lbl.category, action=lbl.action)
        for lbl in store.list_error_labels(templates=templates)
    )
