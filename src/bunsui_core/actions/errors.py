"""Error actions: classify a message, analyze a session, see and teach what was learned."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bunsui_core.actions._lookups import require_session, session_pipeline
from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.diagnosis.analyzer import SessionAnalysis, analyze_session, label_votes
from bunsui_core.diagnosis.catalog import load_catalog
from bunsui_core.diagnosis.classifier import Hypothesis, classify
from bunsui_core.diagnosis.learning import ConfidenceBasis, posterior, rank_actions
from bunsui_core.diagnosis.templates import MIN_FIXED_WORDS, label_template, template_of
from bunsui_core.diagnosis.vocabulary import Category, Layer, RecoveryAction
from bunsui_core.errors import InvalidArgumentError, NotFoundError
from bunsui_core.model.fingerprint import fingerprint_of
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.recovery import ErrorLabel, Outcome, Resolution, ResolutionSource
from bunsui_core.model.session import FailureKind
from bunsui_core.model.untrusted import labelled_context
from bunsui_core.recovery.overrides import effective_overrides

MAX_MESSAGE_CHARS = 100_000


class ClassifyInput(ActionInput):
    """An error message to classify."""

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description="Error text (reads stdin on the CLI when omitted).",
    )
    kind: FailureKind | None = Field(
        None,
        description="What the engine observed, if known: "
        "exit_nonzero, killed_by_signal, timeout, "
        "spawn_failed, session_timeout, "
        "runner_lost.",
    )


class RankedSuggestion(ActionOutput):
    """A remediation and its confidence (no command: there is no session to act on)."""

    action: RecoveryAction = Field(description="Remediation from the vocabulary.")
    confidence: float = Field(description="Probability it resolves this kind of error.")
    basis: ConfidenceBasis = Field(description="Prior and observations behind it.")


class ClassifyOutput(ActionOutput):
    """What the message is."""

    error_code: str = Field(description="Catalog code; UNKNOWN when not recognised.")
    category: Category = Field(description="Failure category.")
    transient: bool = Field(description="Likely to pass on a later retry.")
    recoverable: bool = Field(
        description="Fixable without a person changing code, data or permissions."
    )
    description: str = Field(description="What the error code means.")
    layer: Layer = Field(
        description="Which layer decided: run_facts, taxonomy, catalog, model, "
        "learned_template (none when UNKNOWN)."
    )
    evidence: str = Field(description="What in the text decided it.")
    category_confidence: float = Field(
        description="Calibrated probability that the category is right."
    )
    hypothesis: Hypothesis | None = Field(
        description="The learned model's best guess when it was not sure enough to decide."
    )
    fingerprint: str = Field(description="Fingerprint of the message.")
    context: dict[str, Any] = Field(
        description="Values extracted from the message; text values are labelled "
        "untrusted_pipeline_output."
    )
    recovery_suggestions: list[RankedSuggestion] = Field(description="Best first.")


@REGISTRY.define(
    "error:classify",
    title="Classify an error message",
    input_model=ClassifyInput,
    output_model=ClassifyOutput,
    effect=Effect.READ,
    idempotent=True,
    cli_stdin="message",
)
def classify_message(ctx: ActionContext, args: ClassifyInput) -> ClassifyOutput:
    """Classify one error message in layers (labels people gave, the catalog of ECS, Lambda,
    Step Functions, AWS, network, Spark and local-engine failures, the standard taxonomies:
    exception classes, errno, SQLSTATE, HTTP, gRPC, AWS codes, Kubernetes reasons, database,
    broker and search-engine codes, then a learned text model): error_code, category,
    transient, recoverable, which layer decided and how sure it is, values extracted from it,
    and ranked remediations with confidences that include what bunsui has learned. Unknown
    text is UNKNOWN with `escalate` and the model's best hypothesis."""
    found = classify(args.message, kind=args.kind, learned=label_votes(ctx.store, [args.message]))
    fingerprint = fingerprint_of(args.message)
    return ClassifyOutput(
        error_code=found.error_code,
        category=found.category,
        transient=found.transient,
        recoverable=found.recoverable,
        description=found.description,
        layer=found.layer,
        evidence=found.evidence,
        category_confidence=found.confidence,
        hypothesis=found.hypothesis,
        fingerprint=fingerprint,
        context=labelled_context(found.context),
        recovery_suggestions=[
            RankedSuggestion(**r.model_dump()) for r in rank_actions(ctx.store, found, fingerprint)
        ],
    )


class AnalyzeInput(ActionInput):
    """The session to analyze."""

    session_id: str = Field(description="Session id (ses-...).")


@REGISTRY.define(
    "error:analyze",
    title="Analyze a session's errors",
    input_model=AnalyzeInput,
    output_model=SessionAnalysis,
    effect=Effect.READ,
    idempotent=True,
)
def analyze(ctx: ActionContext, args: AnalyzeInput) -> SessionAnalysis:
    """Explain why a session failed: every error classified (code, category, transient,
    recoverable, extracted context such as memory limit vs peak), the raw message as
    untrusted data, past errors with the same fingerprint and what fixed them, and ranked
    recovery suggestions whose `command` runs as printed. Confidences say what they rest on
    (catalog prior vs observed outcomes). Use `recovery_suggest` for full plans."""
    session = require_session(ctx.store, args.session_id)
    overrides = effective_overrides(ctx.store, session)
    pipeline = apply_overrides(session_pipeline(ctx.store, session).pipeline, overrides)
    batches = {
        job: o.parameters["batch_size"]
        for job, o in overrides.items()
        if isinstance(o.parameters.get("batch_size"), int)
    }
    analysis = analyze_session(ctx.store, session, pipeline, batches)
    for error in analysis.errors:
        error.context = labelled_context(error.context)
    return analysis


class ResolutionsInput(ActionInput):
    """Which learned outcomes to show."""

    error_code: str | None = Field(None, description="Only this error code.")
    fingerprint: str | None = Field(None, description="Only this fingerprint.")
    limit: int = Field(50, ge=1, le=1000, description="Most recent outcomes to list.")


class ActionConfidence(ActionOutput):
    """Learned totals for one action."""

    action: str = Field(description="Remediation.")
    successes: int = Field(description="Observed successes.")
    failures: int = Field(description="Observed failures.")
    confidence: float | None = Field(
        description="Posterior with the catalog prior, when the error code is known."
    )


class ResolutionsOutput(ActionOutput):
    """What bunsui has learned."""

    totals: list[ActionConfidence] = Field(description="Per action, for the code/fingerprint.")
    resolutions: list[Resolution] = Field(description="Individual outcomes, newest first.")


@REGISTRY.define(
    "error:resolutions",
    title="List learned resolutions",
    input_model=ResolutionsInput,
    output_model=ResolutionsOutput,
    effect=Effect.READ,
    idempotent=True,
)
def resolutions(ctx: ActionContext, args: ResolutionsInput) -> ResolutionsOutput:
    """List what bunsui learned from outcomes: for an error code or fingerprint, how often
    each action worked and the resulting confidence, plus the individual outcomes."""
    listed = ctx.store.list_resolutions(
        fingerprint=args.fingerprint, error_code=args.error_code, limit=args.limit
    )
    totals = []
    if args.error_code or args.fingerprint:
        # A fingerprint belongs to one error code: its catalog priors give the confidence.
        priors = _catalog_priors(args.error_code or next((r.error_code for r in listed), None))
        stats = ctx.store.action_stats(fingerprint=args.fingerprint, error_code=args.error_code)
        totals = [
            ActionConfidence(
                action=s.action,
                successes=s.successes,
                failures=s.failures,
                confidence=posterior(priors[s.action], s.successes, s.failures)
                if s.action in priors
                else None,
            )
            for s in stats
        ]
    return ResolutionsOutput(totals=totals, resolutions=listed)


def _catalog_priors(error_code: str | None) -> dict[str, float]:
    for entry in load_catalog().entries:
        if entry.error_code == error_code:
            return {a.action.value: a.prior for a in entry.actions}
    return {}


class LearnInput(ActionInput):
    """An outcome observed outside bunsui."""

    error_code: str = Field(pattern=r"^[A-Z][A-Z0-9_]+$", description="Error code it concerned.")
    fingerprint: str | None = Field(None, description="Exact fingerprint, when known.")
    error_id: str | None = Field(None, description="The error record it answered, if any.")
    action: RecoveryAction = Field(description="What was done.")
    outcome: Outcome = Field(description="success or failure.")
    note: str | None = Field(None, max_length=2000, description="What was done, for people.")


@REGISTRY.define(
    "error:learn",
    title="Record a resolution outcome",
    input_model=LearnInput,
    output_model=Resolution,
    effect=Effect.WRITE,
)
def learn(ctx: ActionContext, args: LearnInput) -> Resolution:
    """Record that an action fixed (or did not fix) an error outside bunsui, so future
    confidences for that error code / fingerprint include it."""
    fingerprint = args.fingerprint
    if args.error_id and not fingerprint:
        raise InvalidArgumentError(
            "give the fingerprint with the error id (from error analyze)",
            details={"field": "fingerprint"},
        )
    resolution = Resolution(
        fingerprint=fingerprint or f"code:{args.error_code}",
        error_code=args.error_code,
        action=args.action.value,
        outcome=args.outcome,
        source=ResolutionSource.MANUAL,
        error_id=args.error_id,
        actor=ctx.actor,
        note=args.note,
    )
    ctx.store.add_resolution(resolution)
    return resolution


class LabelInput(ActionInput):
    """A person's verdict on a stored error."""

    error_id: str = Field(min_length=1, max_length=200, description="Error record id (err-...).")
    category: Category = Field(description="What the failure is (not UNKNOWN).")
    action: RecoveryAction = Field(description="The first thing to do about it.")
    note: str | None = Field(None, max_length=2000, description="Why, for the next person.")


class LabelOutput(ActionOutput):
    """The stored label and what diagnosis now says about that error."""

    label: ErrorLabel = Field(description="The label as stored.")
    template: str = Field(description="The message's shape the label applies to (<*> varies).")
    now_classified_as: ClassifyOutput = Field(
        description="How the labelled error is classified from now on (layer learned_template)."
    )


@REGISTRY.define(
    "error:label",
    title="Teach bunsui what an error is",
    input_model=LabelInput,
    output_model=LabelOutput,
    effect=Effect.WRITE,
    cli_arguments=("error_id",),
)
def label(ctx: ActionContext, args: LabelInput) -> LabelOutput:
    """Label a stored error with its category and first action. Its message is reduced to a
    template (numbers, ids, paths, URLs, quoted values masked) and kept; from then on every
    message with that template is recognised with this label (layer `learned_template`),
    its confidence rising as people agree and falling when they disagree."""
    if args.category is Category.UNKNOWN:
        raise InvalidArgumentError(
            "a label names what the error is; UNKNOWN is what bunsui says without one",
            details={"field": "category"},
        )
    error = ctx.store.get_error(args.error_id)
    if error is None:
        raise NotFoundError(f"no error {args.error_id}", details={"error_id": args.error_id})
    template = label_template(error.message)
    if template is None:
        raise InvalidArgumentError(
            f"error {error.error_id} keeps fewer than {MIN_FIXED_WORDS} words of its own text "
            "once numbers, ids, paths and quoted values are masked: a label on it would "
            "answer for unrelated failures",
            details={"error_id": error.error_id, "template": template_of(error.message)},
        )
    stored = ErrorLabel(
        error_id=error.error_id,
        template=template,
        category=args.category.value,
        action=args.action.value,
        actor=ctx.actor,
        note=args.note,
    )
    ctx.store.add_error_label(stored)
    now = classify_message(ctx, ClassifyInput(message=error.message, kind=error.kind))
    return LabelOutput(label=stored, template=stored.template, now_classified_as=now)
