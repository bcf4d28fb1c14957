"""The learned model judges only text that reads as a failure report (`error_words`)."""

from __future__ import annotations

import dataclasses

import pytest

from bunsui_core.diagnosis.catalog import UNKNOWN
from bunsui_core.diagnosis.classifier import classify
from bunsui_core.diagnosis.error_words import reads_as_failure
from bunsui_core.diagnosis.model import shipped_model
from bunsui_core.diagnosis.vocabulary import Category, Layer

NOT_FAILURES = [
    "the flux capacitor is sad",
    "the flux capacitor is misaligned",
    "zxqv: the wibble frobnicated past its quux (glorp 0x7f)",
    "job finished with warnings",
    "all good",
    "",
]


@pytest.mark.parametrize("text", NOT_FAILURES)
def test_text_that_reports_no_failure_does_not_read_as_one(text):
    assert not reads_as_failure(text)


@pytest.mark.parametrize(
    "text",
    [
        "ConnectionRefusedError: [Errno 111]",  # inside an identifier
        "QUOTA_EXCEEDED for project 42",
        "Traceback (most recent call last):",
        "the widget could not be frobnicated",
        "couldn't reach the wibble",
        "Permission denied",
        "request timed out after 30 s",
        "the job was Killed",
    ],
)
def test_failures_read_as_failures_in_prose_and_in_identifiers(text):
    assert reads_as_failure(text)


@pytest.fixture(scope="module")
def eager_model():
    """The shipped model with no probability threshold: only the failure-words gate stops it."""
    model = shipped_model()
    assert model is not None
    return dataclasses.replace(model, threshold=0.0)


@pytest.mark.parametrize("text", NOT_FAILURES[:4])
def test_the_model_does_not_answer_for_text_that_reports_no_failure(eager_model, text):
    """Whatever its probability, such text is UNKNOWN (escalate) with the model's hypothesis."""
    result = classify(text, model=eager_model)
    assert result.error_code == UNKNOWN
    assert result.category is Category.UNKNOWN
    assert result.layer is Layer.NONE
    assert result.hypothesis is not None


def test_the_same_words_told_as_a_failure_are_answered(eager_model):
    result = classify("the flux capacitor failed: cannot allocate it", model=eager_model)
    assert result.layer is Layer.MODEL
    assert result.error_code.startswith("PREDICTED_")
