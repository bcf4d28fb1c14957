"""Recovery plans: the flowchart's "recoverable? -> plan, else escalate" for one session."""

from __future__ import annotations

from bunsui_core.diagnosis.analyzer import AnalyzedError, SessionAnalysis
from bunsui_core.diagnosis.vocabulary import RecoveryAction
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.recovery import PlanStep, RecoveryPlan
from bunsui_core.model.session import Session, SessionStatus
from bunsui_core.recovery.memory_history import memory_history
from bunsui_core.recovery.remedies import FailedJob, Remedy, command, remedy_for
from bunsui_core.recovery.rerun import (
    MAX_RERUNS_PER_SESSION,
    RerunStrategy,
    estimate_minutes,
    recorded_durations,
    select_jobs,
)
from bunsui_core.store.base import SessionFilter, Store


def _last_error_per_job(analysis: SessionAnalysis, session: Session) -> list[AnalyzedError]:
    """The error that ended each failed job (earlier attempts were retried past)."""
    last: dict[str | None, AnalyzedError] = {}
    for error in analysis.errors:
        last[error.job_id] = error
    failed = set(session.failed_jobs)
    chosen = [e for job, e in last.items() if job in failed]
    return chosen or list(last.values())[-1:]


def _risks(
    store: Store, session: Session, error: AnalyzedError, remedy: Remedy, jobs_to_run: list[str]
) -> list[str]:
    """Concrete costs of a plan: the new limits, what reruns, what else is running."""
    risks = []
    if "memory_mb" in remedy.changes:
        before, after = remedy.changes["memory_mb"]
        ratio = f" ({after / before:.1f}x the previous limit)" if before else ""
        risks.append(
            f"{error.job_id} will reserve up to {after} MiB instead of "
            f"{before or 'no limit'}{ratio}; other work on the host has less."
        )
    if "timeout_seconds" in remedy.changes:
        before, after = remedy.changes["timeout_seconds"]
        risks.append(
            f"A hang in {error.job_id} now takes up to {after} s (was {before}) to be detected."
        )
    if "batch_size" in remedy.changes:
        before, after = remedy.changes["batch_size"]
        risks.append(
            f"batch_size {before} -> {after}: more, smaller batches; slower, and the "
            "output must not depend on batch boundaries."
        )
    downstream = [j for j in jobs_to_run if j != error.job_id]
    if downstream:
        risks.append("These jobs will run again too: " + ", ".join(downstream) + ".")
    running = store.list_sessions(
        SessionFilter(status=SessionStatus.RUNNING, pipeline_id=session.pipeline_id), limit=20
    ).sessions
    if running:
        risks.append(
            "Other sessions of this pipeline are running now: "
            + ", ".join(s.session_id for s in running)
            + "."
        )
    if error.transient and remedy.action is RecoveryAction.RETRY:
        risks.append("A transient cause may still be present; the retry can fail the same way.")
    return risks


def _escalation(session: Session, error: AnalyzedError | None, reason: str) -> RecoveryPlan:
    steps = [
        PlanStep(
            step=1,
            action="inspect",
            command=command("error", "analyze", "--session-id", session.session_id),
            reason="Read the classified errors and their evidence.",
        )
    ]
    if error is not None and error.job_id:
        steps.append(
            PlanStep(
                step=2,
                action="inspect",
                command=command(
                    "job",
                    "logs",
                    error.job_id,
                    "--session-id",
                    session.session_id,
                    "--stream",
                    "stderr",
                ),
                reason="Read what the job wrote.",
                requires_human=True,
            )
        )
    return RecoveryPlan(
        session_id=session.session_id,
        job_id=error.job_id if error else None,
        error_id=error.error_id if error else None,
        error_code=error.error_code if error else "UNKNOWN",
        fingerprint=error.fingerprint if error else None,
        action=RecoveryAction.ESCALATE.value,
        description=f"Escalate to a person: {reason}",
        success_probability=0.0,
        estimated_time_minutes=None,
        executable=False,
        steps=steps,
        risks=[],
    )


def suggest_plans(
    store: Store, session: Session, pipeline: Pipeline, analysis: SessionAnalysis
) -> list[RecoveryPlan]:
    """Ranked plans for the session's failures, each stored so it can be executed by id."""
    if session.status is not SessionStatus.FAILED and session.status is not SessionStatus.TIMEOUT:
        plans = [_escalation(session, None, f"session is {session.status}, not failed")]
    else:
        plans = _plans_for_failures(store, session, pipeline, analysis)
    if not store.read_only:
        for plan in plans:
            store.put_recovery_plan(plan)
    return plans


def _plans_for_failures(
    store: Store, session: Session, pipeline: Pipeline, analysis: SessionAnalysis
) -> list[RecoveryPlan]:
    root = session.root_session_id or session.session_id
    errors = _last_error_per_job(analysis, session)
    if store.count_reruns(root) >= MAX_RERUNS_PER_SESSION:
        return [
            _escalation(
                session,
                errors[0] if errors else None,
                f"retry budget spent ({MAX_RERUNS_PER_SESSION} reruns of {root})",
            )
        ]
    if not errors:
        return [_escalation(session, None, "the session failed without an error record")]
    statuses = {r.job_id: r.status for r in store.list_job_runs(session.session_id)}
    durations = recorded_durations(store.list_job_runs(session.session_id))
    plans: list[RecoveryPlan] = []
    for error in errors:
        failed = FailedJob(
            session_id=session.session_id,
            job_id=error.job_id,
            error_id=error.error_id,
            context=error.context,
            memory=memory_history(store, session, error.job_id),
        )
        from_jobs = {error.job_id} if error.job_id else set()
        selection = select_jobs(pipeline, statuses, RerunStrategy.CHECKPOINT, from_jobs)
        minutes = estimate_minutes(pipeline, selection.jobs_to_run, durations)
        cannot_fit = False
        for suggestion in error.recovery_suggestions:
            action = RecoveryAction(suggestion.action)
            remedy = remedy_for(action, failed, pipeline)
            if remedy is None:
                cannot_fit = cannot_fit or action is RecoveryAction.INCREASE_MEMORY
                continue
            plans.append(
                RecoveryPlan(
                    session_id=session.session_id,
                    job_id=error.job_id,
                    error_id=error.error_id,
                    error_code=error.error_code,
                    fingerprint=error.fingerprint,
                    action=action.value,
                    description=f"{error.error_code} in {error.job_id or 'the session'}: "
                    f"{remedy.summary}",
                    success_probability=suggestion.confidence,
                    estimated_time_minutes=minutes if remedy.executable else None,
                    executable=remedy.executable,
                    steps=remedy.steps,
                    risks=_risks(store, session, error, remedy, selection.jobs_to_run),
                )
            )
        if cannot_fit or not any(p.error_id == error.error_id for p in plans):
            reason = (
                "more memory is needed than the target can provide"
                if cannot_fit
                else f"no automatic remedy applies to {error.error_code}"
            )
            plans.append(_escalation(session, error, reason))
    return sorted(plans, key=lambda p: (not p.executable, -p.success_probability))
