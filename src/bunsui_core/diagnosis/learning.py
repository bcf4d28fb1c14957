"""Confidences that learn: the catalog prior combined with outcomes actually observed.

Each action's confidence is the mean of a Beta posterior whose prior is worth PRIOR_WEIGHT
observations: after a handful of real outcomes the evidence dominates, and every number
says what it rests on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from bunsui_core.diagnosis.vocabulary import RecoveryAction
from bunsui_core.model.recovery import ActionStats, Outcome, Resolution, ResolutionSource
from bunsui_core.model.session import RunStatus, Session
from bunsui_core.store.base import Store

if TYPE_CHECKING:
    from bunsui_core.diagnosis.classifier import Classification

PRIOR_WEIGHT = 4.0
LEARNED_ONLY_PRIOR = 0.25
"""Prior for an action the catalog does not suggest but people recorded as a fix."""


class ConfidenceBasis(BaseModel):
    """What a confidence rests on."""

    prior: float = Field(description="Catalog prior for this action and error code.")
    prior_weight: float = Field(description="How many observations the prior is worth.")
    successes: int = Field(description="Observed successes of this action.")
    failures: int = Field(description="Observed failures of this action.")
    observed_for: Literal["fingerprint", "error_code", "none"] = Field(
        description="Whether observations are for this exact fingerprint, the error code, "
        "or there are none yet (prior only)."
    )


class RankedAction(BaseModel):
    """A remediation with its current confidence."""

    action: RecoveryAction
    confidence: float = Field(description="Posterior probability that it resolves the error.")
    basis: ConfidenceBasis


def posterior(prior: float, successes: int, failures: int) -> float:
    """Mean of Beta(prior*W + s, (1-prior)*W + f)."""
    value = (prior * PRIOR_WEIGHT + successes) / (PRIOR_WEIGHT + successes + failures)
    return round(value, 3)


def rank_actions(
    store: Store, classification: Classification, fingerprint: str
) -> list[RankedAction]:
    """The error's remediations, most likely to work first, from prior and observations."""
    by_fingerprint = {s.action: s for s in store.action_stats(fingerprint=fingerprint)}
    by_code = {s.action: s for s in store.action_stats(error_code=classification.error_code)}
    priors = {p.action.value: p.prior for p in classification.priors}
    for action in {*by_fingerprint, *by_code} - priors.keys():
        if action in RecoveryAction.__members__.values():
            priors[action] = LEARNED_ONLY_PRIOR
    ranked = []
    for action, prior in priors.items():
        stats, observed_for = _evidence(by_fingerprint.get(action), by_code.get(action))
        ranked.append(
            RankedAction(
                action=RecoveryAction(action),
                confidence=posterior(prior, stats.successes, stats.failures),
                basis=ConfidenceBasis(
                    prior=prior,
                    prior_weight=PRIOR_WEIGHT,
                    successes=stats.successes,
                    failures=stats.failures,
                    observed_for=observed_for,
                ),
            )
        )
    return sorted(ranked, key=lambda r: (-r.confidence, r.action.value))


def _evidence(
    fingerprint_stats: ActionStats | None, code_stats: ActionStats | None
) -> tuple[ActionStats, Literal["fingerprint", "error_code", "none"]]:
    """The most specific observations available: this exact failure, else its error code."""
    if fingerprint_stats and fingerprint_stats.successes + fingerprint_stats.failures:
        return fingerprint_stats, "fingerprint"
    if code_stats and code_stats.successes + code_stats.failures:
        return code_stats, "error_code"
    return ActionStats(action=""), "none"


def record_rerun_outcome(store: Store, session: Session) -> Resolution | None:
    """When a rerun made for a recovery action ends, remember whether the action worked."""
    context = session.recovery
    if context is None or not session.status.is_terminal:
        return None
    runs = {r.job_id: r.status for r in store.list_job_runs(session.session_id)}
    worked = runs.get(context.job_id) is RunStatus.COMPLETED
    resolution = Resolution(
        fingerprint=context.fingerprint,
        error_code=context.error_code,
        action=context.action,
        outcome=Outcome.SUCCESS if worked else Outcome.FAILURE,
        source=ResolutionSource.RERUN,
        error_id=context.error_id,
        session_id=session.session_id,
        actor=session.requested_by,
    )
    store.add_resolution(resolution)
    return resolution
