"""The learned model's features: word and character n-grams, one function for training and use.

Training (scikit-learn) and prediction (numpy) call the same `features()`, so the shipped
model sees exactly the tokens it was trained on. Linear time in the text; only the tail is
read, as for every layer.
"""

from __future__ import annotations

import itertools

MAX_FEATURE_CHARS = 4_000
CHAR_NGRAMS = (3, 5)
_SEPARATORS = str.maketrans(dict.fromkeys("()[]{}<>\"'`,;=|\t\r\n", " "))


def _words(text: str) -> list[str]:
    """Lower-case tokens of two or more characters, split on anything but letters, digits,
    `.`, `_`, `:` and `-` (so `json.decoder.JSONDecodeError` and `States.Timeout` stay whole)."""
    tokens = []
    for raw in text.translate(_SEPARATORS).split():
        token = raw.strip(".:-_").lower()
        if len(token) >= 2 and not token.replace(".", "").isdigit():
            tokens.append(token)
    return tokens


def _parts(token: str) -> list[str]:
    """A dotted name's last part (`pandas.errors.parsererror` -> `parsererror`)."""
    last = token.rsplit(".", 1)[-1]
    return [last] if last != token and len(last) >= 2 else []


def features(text: str) -> list[str]:
    """Every feature of the text: words, dotted-name tails, word bigrams, char n-grams."""
    tokens = _words(text[-MAX_FEATURE_CHARS:])
    found = [f"w:{t}" for t in tokens]
    found += [f"w:{p}" for t in tokens for p in _parts(t)]
    found += [f"b:{a} {b}" for a, b in itertools.pairwise(tokens)]
    low, high = CHAR_NGRAMS
    for token in tokens:
        padded = f" {token} "
        for n in range(low, high + 1):
            found += [f"c:{padded[i : i + n]}" for i in range(max(1, len(padded) - n + 1))]
    return found
