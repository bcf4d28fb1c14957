"""The learned text model: TF-IDF over word and character n-grams, linear, temperature-calibrated.

Trained by `python -m bunsui_core.diagnosis.training` (scikit-learn, dev extra) on the labelled
corpus in tests/data/errors and shipped as `error_model.npz`: plain arrays, read with
`allow_pickle=False`, predicted with numpy alone. Loaded on first use, so commands that never
classify never pay for it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bunsui_core.diagnosis.text_features import features
from bunsui_core.diagnosis.vocabulary import Category, RecoveryAction

if TYPE_CHECKING:
    import numpy as np

MODEL_PATH = Path(__file__).with_name("error_model.npz")
HEADS = ("category", "first_action")


def says_transient(category: str, action: str) -> bool:
    """An answer is transient when its first action is a retry and its category can be (the
    heads are fitted apart: a predicted missing dependency that says retry is not)."""
    return not Category(category).never_transient and RecoveryAction(action).retries


@dataclass(frozen=True)
class Head:
    """One linear classifier over the shared features."""

    classes: list[str]
    coef: Any  # np.ndarray (classes x features)
    intercept: Any  # np.ndarray (classes,)
    temperature: float


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one message: best labels and their calibrated probabilities."""

    category: str
    category_probability: float
    first_action: str
    action_probability: float
    ranked_actions: list[tuple[str, float]]


@dataclass(frozen=True)
class TextModel:
    """Vocabulary, idf weights and the two heads; `predict` mirrors sklearn's TfidfVectorizer
    (sublinear tf, l2 norm) followed by a softmax of the linear scores."""

    vocabulary: dict[str, int]
    idf: Any  # np.ndarray
    heads: dict[str, Head]
    threshold: float
    layer_precision: dict[str, float]
    transient_threshold: float = 1.0
    """A decided answer is called transient only at this category probability or above:
    above every out-of-family answer that called a missing thing or a refusal transient."""

    def raw_scores(self, text: str) -> dict[str, np.ndarray]:
        """Each head's linear scores for the message, from one sparse tf-idf row (sublinear
        tf, l2 norm): only the message's own features are touched, never a dense row as wide
        as the vocabulary."""
        import numpy as np  # noqa: PLC0415 - numpy loads only when a message is classified

        counts = Counter(i for f in features(text) if (i := self.vocabulary.get(f)) is not None)
        indexes = np.fromiter(counts, dtype=np.intp, count=len(counts))
        weights = np.array([1.0 + math.log(n) for n in counts.values()]) * self.idf[indexes]
        norm = float(np.sqrt(weights @ weights)) if len(weights) else 0.0
        if norm:
            weights /= norm
        return {
            name: head.coef[:, indexes] @ weights + head.intercept
            for name, head in self.heads.items()
        }

    def predict(self, text: str) -> Prediction:
        """Best category and first action, with their calibrated probabilities."""
        scores = self.raw_scores(text)
        categories = self._ranked("category", scores["category"])
        actions = self._ranked("first_action", scores["first_action"])
        return Prediction(
            category=categories[0][0],
            category_probability=categories[0][1],
            first_action=actions[0][0],
            action_probability=actions[0][1],
            ranked_actions=actions,
        )

    def _ranked(self, head: str, raw: np.ndarray) -> list[tuple[str, float]]:
        """One head's calibrated class probabilities, best first."""
        spec = self.heads[head]
        probabilities = softmax(raw, spec.temperature).tolist()
        ranked = sorted(zip(spec.classes, probabilities, strict=True), key=lambda p: -p[1])
        return [(label, round(float(p), 4)) for label, p in ranked]


def softmax(raw: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities from linear scores at a calibration temperature."""
    import numpy as np  # noqa: PLC0415

    z = raw / temperature
    z = np.exp(z - z.max())
    return z / z.sum()  # type: ignore[no-any-return]


def save_model(model: TextModel, path: Path) -> None:
    """Write the model as plain arrays (no pickled objects anywhere)."""
    import numpy as np  # noqa: PLC0415

    arrays: dict[str, Any] = {
        "vocabulary": np.array(sorted(model.vocabulary, key=model.vocabulary.__getitem__)),
        "idf": model.idf.astype(np.float32),
        "threshold": np.array(model.threshold),
        "transient_threshold": np.array(model.transient_threshold),
        "layer_names": np.array(sorted(model.layer_precision)),
        "layer_precision": np.array(
            [model.layer_precision[k] for k in sorted(model.layer_precision)]
        ),
    }
    for name, head in model.heads.items():
        arrays[f"{name}_classes"] = np.array(head.classes)
        arrays[f"{name}_coef"] = head.coef.astype(np.float16)  # ample for linear scores
        arrays[f"{name}_intercept"] = head.intercept.astype(np.float32)
        arrays[f"{name}_temperature"] = np.array(head.temperature)
    np.savez_compressed(path, **arrays)


def read_model(path: Path) -> TextModel:
    """Read a model written by `save_model`."""
    import numpy as np  # noqa: PLC0415

    with np.load(path, allow_pickle=False) as data:
        heads = {
            name: Head(
                classes=[str(c) for c in data[f"{name}_classes"]],
                coef=data[f"{name}_coef"].astype(np.float64),
                intercept=data[f"{name}_intercept"].astype(np.float64),
                temperature=float(data[f"{name}_temperature"]),
            )
            for name in HEADS
        }
        return TextModel(
            vocabulary={str(word): i for i, word in enumerate(data["vocabulary"])},
            idf=data["idf"].astype(np.float64),
            heads=heads,
            threshold=float(data["threshold"]),
            transient_threshold=float(data["transient_threshold"]),
            layer_precision={
                str(k): float(v)
                for k, v in zip(data["layer_names"], data["layer_precision"], strict=True)
            },
        )


@cache
def shipped_model() -> TextModel | None:
    """The model shipped in the package, read once; None when it is absent."""
    return read_model(MODEL_PATH) if MODEL_PATH.exists() else None
