"""The shipped text model scores a message exactly as training vectorized it."""

from __future__ import annotations

import numpy as np
import pytest

from bunsui_core.diagnosis.model import read_model, save_model
from bunsui_core.diagnosis.training import CORPUS_DIR, FeatureSpace, load_corpus, train

FAMILIES = {"python-stdlib", "postgres", "docker"}


@pytest.fixture(scope="module")
def fitted():
    """A model trained on three families, and the feature space it was trained in."""
    examples = [e for e in load_corpus(CORPUS_DIR) if e.family in FAMILIES]
    space = FeatureSpace.of(examples)
    return examples, space, train(examples, space=space)


def test_serving_scores_equal_the_training_rows(fitted):
    """Serving builds its tf-idf row from the message's own features only; the scores must be
    those of the row training fitted on (sublinear tf, idf, l2 norm), for every head."""
    examples, space, model = fitted
    rows, _, _ = space.select(examples)
    for index in range(0, len(examples), 7):
        row = rows[index].toarray().ravel()
        scores = model.raw_scores(examples[index].message)
        for name, head in model.heads.items():
            assert np.allclose(scores[name], head.coef @ row + head.intercept), name


def test_a_message_with_no_known_feature_scores_the_intercepts(fitted):
    """Nothing in the vocabulary (an empty message) is no error: the priors decide."""
    _, _, model = fitted
    scores = model.raw_scores("")
    for name, head in model.heads.items():
        assert np.allclose(scores[name], head.intercept)


def test_a_saved_model_predicts_as_the_trained_one(fitted, tmp_path):
    """The shipped file (float16 weights) gives the same answers as the model in memory."""
    examples, _, model = fitted
    save_model(model, tmp_path / "m.npz")
    shipped = read_model(tmp_path / "m.npz")
    for example in examples[::11]:
        assert shipped.predict(example.message).category == model.predict(example.message).category


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("TopicAuthorizationException", {"topic", "authorization", "exception"}),
        ("MEMORY_LIMIT_EXCEEDED", {"memory", "limit", "exceeded"}),
        ("io.grpc.StatusRuntimeException", {"status", "runtime", "exception"}),
        ("HTTPServerError", {"http", "server", "error"}),
    ],
)
def test_an_identifier_shares_its_words_with_prose(identifier, words):
    """A word inside a class name or an error code is the same feature as in a sentence, so
    what a family says in prose teaches the model about another family's identifiers."""
    from bunsui_core.diagnosis.text_features import features  # noqa: PLC0415

    assert {f"w:{w}" for w in words} <= set(features(identifier))
    assert {f"w:{w}" for w in words} <= set(features(" ".join(words)))


def test_a_single_word_adds_no_subword_features():
    """`timeout` or `ORA-01555` is one word already: no sub-word duplicates it."""
    from bunsui_core.diagnosis.text_features import features  # noqa: PLC0415

    assert sorted(f for f in features("timeout ORA-01555") if f.startswith("w:")) == [
        "w:ora-01555",
        "w:timeout",
    ]


def test_the_values_of_one_thread_do_not_change_what_the_model_reads():
    """Two failures that differ only in their ids, paths, numbers and quoted names give the
    model the same features: it learns the error's words, not one thread's values."""
    from bunsui_core.diagnosis.text_features import features  # noqa: PLC0415

    first = "2024-05-01T10:00:00Z task 7f3a9c2e41d0 failed: keyspace 'orders' does not exist"
    second = "2019-12-31T23:59:59Z task 0b8e77d1c3aa failed: keyspace 'users' does not exist"
    assert features(first) == features(second)
    assert "w:exist" in features(first)
    assert not {f for f in features("cannot read /srv/in/part-0001.csv") if "part" in f}


def test_stack_frames_are_not_read_unless_they_are_all_there_is():
    """JVM, Python and Go frame lines name the thread's own code; the error line is read.
    A text made only of frames is still read rather than left empty."""
    from bunsui_core.diagnosis.text_features import features  # noqa: PLC0415

    frames = (
        "\tat com.acme.loader.Batch.flush(Batch.java:42)\n"
        '  File "/app/etl/steps.py", line 88, in load\n'
        "\t... 12 more\n"
        "main.go:131 +0x1d\n"
    )
    found = set(features(f"{frames}java.lang.IllegalStateException: pool exhausted"))
    assert {"w:pool", "w:exhausted"} <= found
    assert not {f for f in found if "acme" in f or "steps" in f or "batch" in f}
    assert "w:flush" in set(features(frames))


def test_the_transient_threshold_sits_above_every_out_of_family_slip():
    """Where an out-of-family answer said retry for a refused permission, the trained model
    advises no retry at that probability or below; right retries elsewhere do not lower it."""
    import math  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from bunsui_core.diagnosis.model import Head  # noqa: PLC0415
    from bunsui_core.diagnosis.training import Example, _transient_threshold  # noqa: PLC0415

    def network_at(p):
        return (["NETWORK", "PERMISSION"], np.array([math.log(p / (1 - p)), 0.0]), "x")

    def example(category, transient):
        return Example("i", "f", "m", category, "retry", transient)

    categories = [network_at(0.95), network_at(0.7), network_at(0.6)]
    actions = [(["retry"], np.zeros(1), "retry")] * 3
    order = [example("NETWORK", True), example("PERMISSION", False), example("NETWORK", True)]
    heads = {name: Head([], None, None, 1.0) for name in ("category", "first_action")}
    assert _transient_threshold(categories, actions, order, heads) == 0.701
    assert _transient_threshold(categories[::2], actions[:2], order[::2], heads) == 0.001
