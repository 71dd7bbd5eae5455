"""Classifiers trained on the offline embeddings: cross-validated, kept as numbers (JSON) that
predict as scikit-learn does, refused when the examples cannot support k-fold CV."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agentqueue.ai import classifier as classifiers
from agentqueue.ai.embeddings import embed

TICKETS = {
    "billing": ["refund my order please", "I want my money back", "the charge was wrong",
                "return this item and refund me", "please reimburse the fee"],
    "bug": ["the app crashes on start", "error 500 when I log in", "the button does nothing",
            "it freezes after the update", "the login page is broken"],
    "question": ["how do I change my plan", "what are your opening hours",
                 "where can I find the docs", "can I add a teammate",
                 "is there a student discount"],
}
TEXTS = [t for texts in TICKETS.values() for t in texts]
LABELS = [label for label, texts in TICKETS.items() for _ in texts]


async def test_training_reports_each_fold_and_classifies_new_text() -> None:
    folds: list[tuple[int, int, float]] = []

    async def on_fold(done: int, total: int, accuracy: float) -> None:
        folds.append((done, total, accuracy))

    training = await classifiers.train(TEXTS, LABELS, folds=5, on_fold=on_fold)
    assert [(d, t) for d, t, _ in folds] == [(n, 5) for n in range(1, 6)]
    assert training.fold_accuracies == [a for _, _, a in folds]
    assert training.accuracy == pytest.approx(sum(training.fold_accuracies) / 5, abs=1e-4)
    assert training.accuracy >= 0.8  # three well separated topics
    assert training.counts == {"billing": 5, "bug": 5, "question": 5}

    model = classifiers.Classifier.from_json(json.loads(json.dumps(training.classifier.to_json())))
    label, scores = await model.classify("I was charged twice, give me my money back")
    assert label == "billing"
    assert set(scores) == set(TICKETS) and sum(scores.values()) == pytest.approx(1, abs=1e-4)
    assert (await model.classify("the app shows an error and crashes"))[0] == "bug"


@pytest.mark.parametrize("labels", [sorted(TICKETS), ["billing", "bug"]])
def test_stored_numbers_predict_as_scikit_learn_does(labels: list[str]) -> None:
    rows = [i for i, label in enumerate(LABELS) if label in labels]
    texts, y = [TEXTS[i] for i in rows], [LABELS[i] for i in rows]
    vectors = embed(texts)
    fitted = classifiers._fit(vectors, y, 10.0)
    stored = classifiers.Classifier(labels=[str(c) for c in fitted.classes_],
                                    coef=fitted.coef_.tolist(),
                                    intercept=fitted.intercept_.tolist())
    assert np.allclose(stored.probabilities(vectors), fitted.predict_proba(vectors), atol=1e-6)


def test_two_labels_and_enough_examples_per_fold_are_required() -> None:
    with pytest.raises(classifiers.TrainingError, match="at least 2 different labels"):
        classifiers.check_counts(["a"] * 10, 5)
    with pytest.raises(classifiers.TrainingError,
                       match=r"5-fold cross-validation needs at least 5 examples per label "
                             r"\('b' has 3\)"):
        classifiers.check_counts(["a"] * 5 + ["b"] * 3, 5)
    assert classifiers.check_counts(["b", "a", "b", "a"], 2) == {"a": 2, "b": 2}
