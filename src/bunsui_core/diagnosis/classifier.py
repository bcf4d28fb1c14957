"""Classification in layers: message + run facts -> a code, its category and who decided. Pure.

Precedence, most specific evidence first:
1. learned_template: a person labelled this exact message shape in this installation;
2. catalog (and its run-fact entries: timeout kill, OOM kill at the limit, lost runner);
3. taxonomy: the standard vocabularies decoded from the text (taxonomy.py);
   a reading of the text by 2. or 3. yields to the model (5.) when the model disagrees and
   is surer than that layer measured to be;
4. run_facts: the exit status alone (SIGKILL/137, SIGSEGV/139, the engine's signal kill);
5. model: the learned text model, when its calibrated probability reaches its threshold and
   the text uses the words failures are reported with (`error_words`);
6. the catalog's bare non-zero exit; else UNKNOWN, carrying the model's best hypothesis.
Each layer is measured on its own by `make eval`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from bunsui_core.diagnosis import run_facts, taxonomy
from bunsui_core.diagnosis.catalog import (
    UNKNOWN_ENTRY,
    ActionPrior,
    Catalog,
    CatalogEntry,
    Extractor,
    Match,
    definition,
    load_catalog,
)
from bunsui_core.diagnosis.error_words import reads_as_failure
from bunsui_core.diagnosis.patterns import catalog_pattern
from bunsui_core.diagnosis.templates import LabelVote, recognise
from bunsui_core.diagnosis.vocabulary import Category, Layer, RecoveryAction
from bunsui_core.model.session import FailureKind

if TYPE_CHECKING:
    from bunsui_core.diagnosis.model import TextModel

MAX_CLASSIFIED_CHARS = 20_000
RULE_CONFIDENCE = 0.9
"""A rule layer's confidence when the shipped model has not measured that layer."""

_UNITS_TO_MIB = {
    "b": 1 / 2**20,
    "bytes": 1 / 2**20,
    "kb": 1 / 1024,
    "kib": 1 / 1024,
    "mb": 1.0,
    "mib": 1.0,
    "gb": 1024.0,
    "gib": 1024.0,
    "tb": 2**20,
    "tib": 2**20,
}


class Hypothesis(BaseModel):
    """The learned model's best guess, kept when it is not sure enough to decide."""

    category: Category = Field(description="Most likely category.")
    action: RecoveryAction = Field(description="Most likely first action.")
    probability: float = Field(description="Calibrated probability of that category.")


class Classification(BaseModel):
    """What a failure is, what was extracted, and the catalog's ranked remediations."""

    error_code: str = Field(description="Stable code, UNKNOWN when not recognised.")
    category: Category = Field(description="Failure category.")
    transient: bool = Field(description="Likely to pass if simply retried later.")
    recoverable: bool = Field(
        description="bunsui can fix it without a human changing code, data or permissions."
    )
    description: str = Field(description="What this error code means.")
    context: dict[str, Any] = Field(description="Values from the message and the run.")
    priors: list[ActionPrior] = Field(description="Remediations with prior confidences.")
    layer: Layer = Field(
        default=Layer.NONE,
        description="Which layer decided: run_facts, taxonomy, catalog, model, "
        "learned_template (none for UNKNOWN).",
    )
    confidence: float = Field(
        default=0.0,
        description="Calibrated probability that the category is right (measured per layer).",
    )
    evidence: str = Field(default="", description="What in the text or run decided it.")
    hypothesis: Hypothesis | None = Field(
        default=None, description="The model's best guess when it did not decide."
    )


Recognizer = Callable[[str, FailureKind | None, dict[str, Any]], "Classification | None"]
"""A domain plug-in: (text, kind, context) -> a classification (use `layer=Layer.CATALOG`
and a code of its own), or None to let the layers go on. Recognizers are specific (they key on
their job type's run facts, e.g. a dbt node's status), so they run before the catalog."""
RECOGNIZER_MODULES = ("bunsui_core.diagnosis.dbt",)
"""Domain modules whose `recognize` function (a Recognizer) is plugged in when present."""
_RECOGNIZERS: list[Recognizer] = []


def register_recognizer(recognizer: Recognizer) -> None:
    """Plug a domain recognizer in ahead of the catalog."""
    if recognizer not in _RECOGNIZERS:
        _RECOGNIZERS.append(recognizer)


@cache
def _plug_in_modules() -> None:
    """Register the `recognize` of each RECOGNIZER_MODULES module that exists (once)."""
    for name in RECOGNIZER_MODULES:
        if importlib.util.find_spec(name) is not None:
            register_recognizer(importlib.import_module(name).recognize)


def _convert(extractor: Extractor, groups: dict[str, str | None]) -> Any:
    raw = groups["value"] or ""
    if extractor.type == "int":
        return int(raw)
    if extractor.type == "float":
        return float(raw.rstrip("."))
    if extractor.type == "mib":
        unit = (groups.get("unit") or "mib").lower()
        return round(float(raw.rstrip(".")) * _UNITS_TO_MIB.get(unit, 1.0), 1)
    return raw


def extract_context(catalog: Catalog, message: str) -> dict[str, Any]:
    """Every extractor's first match in the message."""
    found: dict[str, Any] = {}
    for extractor in catalog.extractors:
        if extractor.name in found:
            continue
        match = extractor.search(message)
        if match:
            try:
                found[extractor.name] = _convert(extractor, match.groupdict())
            except ValueError:
                continue
    return found


def _holds(rule: Match, message: str, kind: FailureKind | None, context: dict[str, Any]) -> bool:
    if rule.kinds and kind not in rule.kinds:
        return False
    if any(context.get(key) is None for key in rule.requires):
        return False
    if rule.patterns and not any(catalog_pattern(p).search(message) for p in rule.patterns):
        return False
    if any(catalog_pattern(p).search(message) for p in rule.unless):
        return False
    return bool(rule.kinds or rule.patterns or rule.requires)


def _held_rule(
    entry: CatalogEntry, message: str, kind: FailureKind | None, context: dict[str, Any]
) -> Match | None:
    """The first of an entry's conditions that holds, or None when none does."""
    for rule in (entry.match, *entry.also):
        if _holds(rule, message, kind, context):
            return rule
    return None


def _result(
    entry: CatalogEntry,
    context: dict[str, Any],
    layer: Layer,
    confidence: float,
    evidence: str,
) -> Classification:
    return Classification(
        error_code=entry.error_code,
        category=entry.category,
        transient=entry.transient,
        recoverable=entry.recoverable,
        description=entry.description,
        context=context,
        priors=sorted(entry.actions, key=lambda a: -a.prior),
        layer=layer,
        confidence=round(confidence, 3),
        evidence=evidence,
    )


def match_catalog(
    catalog: Catalog,
    message: str,
    kind: FailureKind | None,
    context: dict[str, Any],
    *,
    after: str | None = None,
) -> tuple[CatalogEntry, Match] | None:
    """The first catalog entry (of one precedence group) whose conditions hold, and the
    condition that held."""
    for entry in catalog.entries:
        if entry.after != after:
            continue
        rule = _held_rule(entry, message, kind, context)
        if rule is not None:
            return entry, rule
    return None


def _layer_confidence(layer: Layer, model: TextModel | None, key: str | None = None) -> float:
    """The layer's precision as measured when the model was trained (its calibration); `key`
    names one kind of the layer's readings measured apart, when the model measured it."""
    if model is None:
        return RULE_CONFIDENCE
    overall = model.layer_precision.get(layer.value, RULE_CONFIDENCE)
    return model.layer_precision.get(key, overall) if key else overall


def _learned(
    message: str, context: dict[str, Any], votes: Sequence[LabelVote]
) -> Classification | None:
    found = recognise(message, list(votes))
    if found is None:
        return None
    category = Category(found.category)
    action = RecoveryAction(found.action)
    transient = action.retries
    return Classification(
        error_code=f"LEARNED_{category.value}",
        category=category,
        transient=transient,
        recoverable=not action.needs_human,
        description=f"Labelled {category.value} / {action.value} by people in this "
        f"installation ({found.agreeing} agreeing, {found.disagreeing} not).",
        context=context,
        priors=[ActionPrior(action=action, prior=found.confidence)],
        layer=Layer.LEARNED_TEMPLATE,
        confidence=found.confidence,
        evidence="template labelled with `bunsui error label`",
    )


def _model_verdict(
    text: str, context: dict[str, Any], model: TextModel | None
) -> tuple[Classification | None, Hypothesis | None]:
    """The model's classification when it is confident and the text reads as a failure
    report (`error_words`), else its hypothesis only."""
    text = run_facts.job_output(text)
    if model is None or not text:
        return None, None
    from bunsui_core.diagnosis.model import says_transient  # noqa: PLC0415 - loaded with it

    prediction = model.predict(text)
    category = Category(prediction.category)
    action = RecoveryAction(prediction.first_action)
    hypothesis = Hypothesis(
        category=category, action=action, probability=prediction.category_probability
    )
    if prediction.category_probability < model.threshold or not reads_as_failure(text):
        return None, hypothesis
    transient = (
        says_transient(category, action)
        and prediction.category_probability >= model.transient_threshold
    )
    priors = [
        ActionPrior(action=RecoveryAction(name), prior=probability)
        for name, probability in prediction.ranked_actions[:3]
    ]
    verdict = Classification(
        error_code=f"PREDICTED_{category.value}",
        category=category,
        transient=transient,
        recoverable=not action.needs_human,
        description=f"Recognised as {category.value} by the learned text model (no rule matched).",
        context=context,
        priors=priors,
        layer=Layer.MODEL,
        confidence=prediction.category_probability,
        evidence=f"text model, p={prediction.category_probability:.2f}",
    )
    return verdict, hypothesis


def classify(
    message: str,
    *,
    kind: FailureKind | None = None,
    run_context: dict[str, Any] | None = None,
    catalog: Catalog | None = None,
    learned: Sequence[LabelVote] = (),
    use_model: bool = True,
    model: TextModel | None = None,
) -> Classification:
    """The most specific layer's answer; UNKNOWN (escalate) with a hypothesis when none has one.

    Run facts (exit code, limits, peak memory) win over values read from the text, which is
    untrusted and may be stale.
    """
    catalog = catalog or load_catalog()
    if use_model and model is None:
        from bunsui_core.diagnosis.model import shipped_model  # noqa: PLC0415 - loaded lazily

        model = shipped_model()
    text = message[-MAX_CLASSIFIED_CHARS:]
    context = {**extract_context(catalog, text), **(run_context or {})}
    context.update(run_facts.derive(kind, context))
    if learned and (found := _learned(text, context, learned)):
        return found
    _plug_in_modules()
    for recognizer in _RECOGNIZERS:
        if found := recognizer(text, kind, context):
            return found
    model = model if use_model else None
    matched = match_catalog(catalog, text, kind, context)
    if matched:
        entry, rule = matched
        layer = Layer.CATALOG if rule.text_based else Layer.RUN_FACTS
        found = _result(
            entry, context, layer, _layer_confidence(layer, model), f"catalog {entry.error_code}"
        )
        return found if rule.run_backed else _unless_the_model_is_surer(found, text, model)
    return _after_catalog(catalog, text, kind, context, model)


def _unless_the_model_is_surer(
    found: Classification, text: str, model: TextModel | None
) -> Classification:
    """A reading of the text by a rule (catalog or taxonomy), unless the model disagrees and
    its calibrated probability is above the precision that rule's layer measured (the
    reading's `confidence`): then the model's answer is the likelier one.

    Rules match words, and a word means more than one thing: code raises `ValueError` for a
    role it could not assume, and a catalog pattern meets its words in another cause's text.
    Both estimates are measured out of family when the model is trained, so neither side
    is trusted on its word. Run facts (an exit status, an OOM kill, and catalog entries that
    need them) are not readings of the text alone and never yield. A missing thing or a
    refusal yields only to another: whatever else the model said would list reruns (a
    retry, more time) that a job's output could otherwise talk a refused login into."""
    if model is None or found.layer not in {Layer.CATALOG, Layer.TAXONOMY}:
        return found
    verdict, _ = _model_verdict(text, found.context, model)
    if verdict is None or verdict.category is found.category:
        return found
    if found.category.never_transient and not verdict.category.never_transient:
        return found
    if verdict.confidence <= found.confidence:
        return found
    evidence = (
        f"text model, p={verdict.confidence:.3f}, over {found.evidence} "
        f"(measured {found.confidence:.3f})"
    )
    description = (
        f"Recognised as {verdict.category.value} by the learned text model, surer than the "
        f"{found.layer.value} reading {found.error_code} ({found.category.value})."
    )
    return verdict.model_copy(update={"evidence": evidence, "description": description})


def _after_catalog(
    catalog: Catalog,
    text: str,
    kind: FailureKind | None,
    context: dict[str, Any],
    model: TextModel | None,
) -> Classification:
    decoded = taxonomy.decode(text)
    if decoded and (entry := definition(decoded.code, catalog)):
        confidence = _layer_confidence(Layer.TAXONOMY, model, decoded.precision_key)
        found = _result(entry, context, Layer.TAXONOMY, confidence, decoded.evidence)
        return _unless_the_model_is_surer(found, text, model)
    status_code = run_facts.exit_status_code(kind, context, text)
    fallback = match_catalog(catalog, text, kind, context, after="taxonomy")
    if status_code and (entry := definition(status_code, catalog)):
        return _result(
            entry,
            context,
            Layer.RUN_FACTS,
            _layer_confidence(Layer.RUN_FACTS, model),
            f"exit status ({status_code})",
        )
    if fallback:
        entry, _ = fallback
        return _result(
            entry,
            context,
            Layer.RUN_FACTS,
            _layer_confidence(Layer.RUN_FACTS, model),
            f"run facts ({entry.error_code})",
        )
    verdict, hypothesis = _model_verdict(text, context, model)
    if verdict:
        return verdict
    last = match_catalog(catalog, text, kind, context, after="model")
    entry = last[0] if last else UNKNOWN_ENTRY
    result = _result(
        entry,
        context,
        Layer.RUN_FACTS if last else Layer.NONE,
        _layer_confidence(Layer.RUN_FACTS, model)
        if last
        else (hypothesis.probability if hypothesis else 0.0),
        f"run facts ({entry.error_code})" if last else "",
    )
    return result.model_copy(update={"hypothesis": hypothesis})
