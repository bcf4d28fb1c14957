"""Insights of a pipeline: rules over its history, with learned confidence and stored decisions.

Nothing runs in the background: every read recomputes from the store. Decisions (applied,
dismissed) are merged in by insight id; an applied insight whose runs since the change are
enough to judge gets its verdict recorded once, as a resolution outcome its rule learns from.
"""

from __future__ import annotations

import contextlib
import hashlib

from bunsui_core.diagnosis.learning import posterior
from bunsui_core.errors import ConflictError
from bunsui_core.insights._numbers import sample_weight
from bunsui_core.insights.cost import cost_findings
from bunsui_core.insights.history import History, RunSample, load_history
from bunsui_core.insights.model import (
    ConfidenceBasis,
    Finding,
    Insight,
    Outcome,
    insight_id_for,
)
from bunsui_core.insights.outcomes import judge, rule_code
from bunsui_core.insights.performance import performance_findings
from bunsui_core.insights.preventive import preventive_findings
from bunsui_core.model.insight import InsightState, InsightStatus, InsightVerdict
from bunsui_core.model.recovery import Outcome as ResolutionOutcome
from bunsui_core.model.recovery import Resolution, ResolutionSource
from bunsui_core.model.session import utc_now
from bunsui_core.store.base import Store


def findings_of(history: History) -> list[Finding]:
    """What every rule finds in the history, preventive first."""
    return [*preventive_findings(history), *cost_findings(history), *performance_findings(history)]


def _confidence(store: Store, insight_id: str, finding: Finding) -> tuple[float, ConfidenceBasis]:
    """The fit to the runs as a prior, updated by what applying this insight (or, failing
    that, its rule anywhere) did before."""
    prior = round(finding.fit * sample_weight(finding.runs), 3)
    observed = [
        s for s in store.action_stats(fingerprint=insight_id) if s.successes + s.failures
    ] or [
        s
        for s in store.action_stats(error_code=rule_code(finding.rule))
        if s.successes + s.failures
    ]
    successes = sum(s.successes for s in observed)
    failures = sum(s.failures for s in observed)
    basis = ConfidenceBasis(
        runs=finding.runs,
        fit=round(finding.fit, 3),
        fit_method=finding.fit_method,
        prior=prior,
        successes=successes,
        failures=failures,
    )
    return posterior(prior, successes, failures), basis


def _runs_after(history: History, state: InsightState) -> list[RunSample]:
    return [r for r in history.runs if state.applied_at and r.created_at > state.applied_at]


def _record_verdict(store: Store, history: History, state: InsightState) -> InsightState:
    """Judge an applied change once enough runs followed it, and record the verdict (once)
    as a learned outcome; a read-only store judges nothing."""
    if state.status is not InsightStatus.APPLIED or state.verdict is not None or store.read_only:
        return state
    after = _runs_after(history, state)
    job_id = state.snapshot.get("job_id")
    verdict = judge(state.rule, job_id if isinstance(job_id, str) else None, state.baseline, after)
    if verdict is None:
        return state
    state = state.model_copy(
        update={"verdict": verdict, "verdict_runs": len(after), "verdict_at": utc_now()}
    )
    # another reader, or an earlier read interrupted before its second write, may have
    # recorded this verdict already: the resolution id is the same, the store refuses it
    with contextlib.suppress(ConflictError):
        store.add_resolution(
            Resolution(
                resolution_id=_verdict_id(state),
                fingerprint=state.insight_id,
                error_code=rule_code(state.rule),
                action=str(state.snapshot.get("suggestion", {}).get("action", "")),
                outcome=ResolutionOutcome.SUCCESS
                if verdict is InsightVerdict.HELPED
                else ResolutionOutcome.FAILURE,
                source=ResolutionSource.RERUN,
                session_id=after[-1].session_id,
                actor=state.actor,
                note=f"insight {state.insight_id}: {verdict.value} over {len(after)} runs",
            )
        )
    store.put_insight_state(state)
    return state


def _verdict_id(state: InsightState) -> str:
    """One resolution id per application of an insight: two readers judging it at once, or
    a read interrupted between its two writes, cannot teach the rule the outcome twice."""
    key = f"{state.insight_id}\x1f{state.applied_at}"
    return f"res-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _outcome(history: History, state: InsightState) -> Outcome:
    """The applied change's baseline and, once enough runs followed it, its verdict."""
    return Outcome(
        applied_at=state.applied_at or state.updated_at,
        applied_version=state.applied_version,
        baseline=state.baseline,
        verdict=state.verdict,
        runs_since=len(_runs_after(history, state)),
    )


def with_state(history: History, insight: Insight, state: InsightState, *, holds: bool) -> Insight:
    """The insight with its stored decision (and nothing of an earlier one). An applied
    insight whose verdict is in and whose finding holds again on the newer runs is open
    again (with the last outcome), so it can be applied anew."""
    update: dict[str, object] = {"status": state.status, "status_reason": None, "outcome": None}
    if state.status is InsightStatus.DISMISSED:
        update["status_reason"] = f"{state.reason or 'dismissed'} ({state.actor})"
    if state.status is InsightStatus.APPLIED:
        outcome = _outcome(history, state)
        update["outcome"] = outcome
        if holds and outcome.verdict is not None:
            update["status"] = InsightStatus.OPEN
    return insight.model_copy(update=update)


def pipeline_insights(store: Store, history: History) -> list[Insight]:
    """Current findings plus applied insights (judged against the runs since), by confidence."""
    states = {
        s.insight_id: _record_verdict(store, history, s)
        for s in store.list_insight_states(history.pipeline_id)
    }
    insights: dict[str, Insight] = {}
    for finding in findings_of(history):
        insight_id = insight_id_for(history.pipeline_id, finding.job_id, finding.kind, finding.rule)
        confidence, basis = _confidence(store, insight_id, finding)
        created = max((p.created_at for p in finding.evidence.points), default=utc_now())
        insights[insight_id] = Insight(
            insight_id=insight_id,
            kind=finding.kind,
            rule=finding.rule,
            pipeline_id=history.pipeline_id,
            job_id=finding.job_id,
            title=finding.title,
            evidence=finding.evidence,
            suggestion=finding.suggestion,
            confidence=confidence,
            confidence_basis=basis,
            estimated_effect=finding.estimated_effect,
            created_at=created,
            status=InsightStatus.OPEN,
        )
    for insight_id, state in states.items():
        current = insights.get(insight_id)
        holds = current is not None
        if current is None and state.status is InsightStatus.APPLIED and state.snapshot:
            current = Insight.model_validate(state.snapshot)
        if current is not None:
            insights[insight_id] = with_state(history, current, state, holds=holds)
    return sorted(insights.values(), key=lambda i: (-i.confidence, i.insight_id))


def baseline_of(history: History, insight: Insight) -> dict[str, float]:
    """The figures the runs after applying `insight` are compared with."""
    for finding in findings_of(history):
        if insight_id_for(history.pipeline_id, finding.job_id, finding.kind, finding.rule) == (
            insight.insight_id
        ):
            return finding.baseline
    return {}


def review(store: Store, pipeline_id: str) -> tuple[History | None, list[Insight]]:
    """Load the pipeline's history and its insights (empty when it has no runs)."""
    history = load_history(store, pipeline_id)
    if history is None:
        return None, []
    return history, pipeline_insights(store, history)
