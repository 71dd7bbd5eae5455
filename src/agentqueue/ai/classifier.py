"""Text classifiers trained from labelled examples: scikit-learn's logistic regression over the
offline all-MiniLM-L6-v2 sentence embeddings, its accuracy estimated by stratified k-fold
cross-validation.

A trained classifier is its numbers (labels, coefficients, intercepts) as JSON, never a pickle
(unpickling runs code): prediction is a matrix product and a softmax in numpy, and needs neither
scikit-learn nor a provider. scikit-learn and numpy load with the first training, not at start.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentqueue.ai.embeddings import DIMENSIONS, MODEL_NAME, embed_texts

KIND = "logistic-regression"
METHOD = f"logistic regression over {MODEL_NAME} sentence embeddings"
MIN_FOLDS, MAX_FOLDS, DEFAULT_FOLDS = 2, 10, 5
SEED = 0  # folds and solver: the same examples give the same model and accuracy


class TrainingError(ValueError):
    """The examples cannot train a classifier; the message says why."""


def check_counts(labels: Sequence[str], folds: int) -> dict[str, int]:
    """Examples per label; TrainingError unless there are two labels or more, each with at
    least `folds` examples (every fold of stratified k-fold needs one of each)."""
    counts = dict(sorted(Counter(labels).items()))
    if len(counts) < 2:
        raise TrainingError("a classifier needs examples of at least 2 different labels")
    few = {label: n for label, n in counts.items() if n < folds}
    if few:
        listed = ", ".join(f"{label!r} has {n}" for label, n in few.items())
        raise TrainingError(
            f"{folds}-fold cross-validation needs at least {folds} examples per label ({listed});"
            f" add examples or lower `folds` (at least {MIN_FOLDS})")
    return counts


@dataclass(frozen=True)
class Classifier:
    """A trained linear classifier over `embedding_model` vectors."""

    labels: list[str]
    coef: list[list[float]]  # one row per label (a single row for two labels, as sklearn)
    intercept: list[float]
    embedding_model: str = MODEL_NAME
    kind: str = KIND

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "embeddingModel": self.embedding_model,
                "labels": self.labels, "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Classifier:
        return cls(labels=list(raw["labels"]), coef=[list(r) for r in raw["coef"]],
                   intercept=list(raw["intercept"]), embedding_model=raw["embeddingModel"],
                   kind=raw["kind"])

    def probabilities(self, vectors: Any) -> Any:
        """Each row's probability per label, as sklearn's `predict_proba`."""
        import numpy as np

        scores = np.asarray(vectors, dtype=np.float64) @ np.asarray(self.coef).T
        scores += np.asarray(self.intercept)
        if len(self.labels) == 2:  # one decision function: P(second label)
            second = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - second, second], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    async def classify(self, text: str) -> tuple[str, dict[str, float]]:
        """The most probable label for `text`, and every label's probability."""
        vectors = await embed_texts([text])
        row = self.probabilities(vectors)[0]
        scores = {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}
        return max(scores, key=lambda label: scores[label]), scores


@dataclass(frozen=True)
class Training:
    classifier: Classifier
    counts: dict[str, int]
    folds: int
    fold_accuracies: list[float]

    @property
    def accuracy(self) -> float:
        return round(sum(self.fold_accuracies) / len(self.fold_accuracies), 4)


FoldCallback = Callable[[int, int, float], Awaitable[None]]


async def train(texts: Sequence[str], labels: Sequence[str], *, folds: int = DEFAULT_FOLDS,
                c: float = 10.0, on_fold: FoldCallback | None = None) -> Training:
    """Embed the texts, cross-validate over `folds` stratified folds (`on_fold(done, folds,
    accuracy)` after each), then fit on every example. CPU work runs in a thread, so the
    event loop (which renews the job's lock) keeps going."""
    check_counts(labels, folds)
    vectors = await embed_texts(texts)
    assert vectors.shape[1] == DIMENSIONS
    return await train_vectors(vectors, labels, folds=folds, c=c, on_fold=on_fold)


async def train_vectors(vectors: Any, labels: Sequence[str], *, folds: int = DEFAULT_FOLDS,
                        c: float = 10.0, on_fold: FoldCallback | None = None) -> Training:
    """`train` on texts already embedded (one row of `vectors` per label)."""
    counts = check_counts(labels, folds)
    splits = await asyncio.to_thread(_splits, vectors, list(labels), folds)
    accuracies = []
    for n, (train_rows, test_rows) in enumerate(splits, start=1):
        accuracy = await asyncio.to_thread(_fold, vectors, list(labels), train_rows,
                                           test_rows, c)
        accuracies.append(accuracy)
        if on_fold is not None:
            await on_fold(n, folds, accuracy)
    model = await asyncio.to_thread(_fit, vectors, list(labels), c)
    classifier = Classifier(labels=[str(x) for x in model.classes_],
                            coef=model.coef_.tolist(), intercept=model.intercept_.tolist())
    return Training(classifier, counts, folds, accuracies)


def _model(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, random_state=SEED)


def _splits(vectors: Any, labels: list[str], folds: int) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import StratifiedKFold

    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    return list(kfold.split(vectors, labels))


def _fold(vectors: Any, labels: list[str], train_rows: Any, test_rows: Any, c: float) -> float:
    import numpy as np

    y = np.asarray(labels)
    model = _model(c).fit(vectors[train_rows], y[train_rows])
    return round(float(model.score(vectors[test_rows], y[test_rows])), 4)


def _fit(vectors: Any, labels: list[str], c: float) -> Any:
    return _model(c).fit(vectors, labels)
