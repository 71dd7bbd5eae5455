"""Zero-shot classification by embeddings, on texts whose right label anyone would agree on."""

from __future__ import annotations

import math

import pytest

from agentqueue.ai.embeddings.zero_shot import (
    DEFAULT_TEMPERATURE,
    classify,
    classify_detailed,
    classify_sync,
    softmax,
)

TOPICS = ["sports", "politics", "technology", "cooking"]
SUPPORT = ["billing", "shipping", "technical support"]

CASES = [
    ("The striker scored twice in the final", TOPICS, "sports"),
    ("Our team won the match in extra time", TOPICS, "sports"),
    ("Parliament passed the new budget after a long debate", TOPICS, "politics"),
    ("The senator announced she will run for president", TOPICS, "politics"),
    ("The new phone has a faster chip and better battery life", TOPICS, "technology"),
    ("Whisk the eggs with sugar, then fold in the flour", TOPICS, "cooking"),
    ("Simmer the tomato sauce for twenty minutes", TOPICS, "cooking"),
    ("My package never arrived and nobody answers my emails", SUPPORT, "shipping"),
    ("I was charged twice for the same order", SUPPORT, "billing"),
    ("The app crashes every time I open settings", SUPPORT, "technical support"),
    ("It's going to rain all weekend in Paris", ["weather", "finance", "health"], "weather"),
    ("The stock fell 8% after the earnings report", ["weather", "finance", "health"], "finance"),
    ("I love this product, it works perfectly!", ["positive", "negative"], "positive"),
    ("Terrible service, I want my money back.", ["positive", "negative"], "negative"),
]


@pytest.mark.parametrize(("text", "labels", "expected"), CASES)
async def test_the_obvious_label_wins(text: str, labels: list[str], expected: str) -> None:
    label, scores = await classify(text, labels)
    assert label == expected
    assert list(scores) == labels
    assert math.isclose(sum(scores.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert scores[expected] == max(scores.values())


def test_a_clear_case_is_confident() -> None:
    label, scores = classify_sync("Parliament passed the new budget after a long debate", TOPICS)
    assert label == "politics" and scores["politics"] > 0.9


def test_similarities_explain_the_scores() -> None:
    result = classify_detailed("Whisk the eggs with sugar, then fold in the flour", TOPICS)
    best, runner_up = sorted(result.similarities.values(), reverse=True)[:2]
    odds = result.scores["cooking"] / sorted(result.scores.values())[-2]
    assert math.isclose(odds, math.exp((best - runner_up) / DEFAULT_TEMPERATURE), rel_tol=1e-4)


def test_the_template_and_temperature_can_be_changed() -> None:
    text = "The striker scored twice in the final"
    sharp = classify_detailed(text, TOPICS, temperature=0.01)
    soft = classify_detailed(text, TOPICS, temperature=1.0)
    assert sharp.scores["sports"] > 0.99
    assert max(soft.scores.values()) < 0.3  # nearly uniform over 4 labels
    plain = classify_detailed(text, TOPICS, template="{label}")
    assert plain.label == "sports"


def test_softmax_sums_to_one_and_keeps_order() -> None:
    weights = softmax([0.1, 0.3, 0.2], 0.05)
    assert math.isclose(float(weights.sum()), 1.0)
    assert list(weights.argsort()) == [0, 2, 1]
    with pytest.raises(ValueError):
        softmax([0.1], 0)


@pytest.mark.parametrize("labels", [[], ["a", "a"], ["ok", " "]])
def test_bad_labels_are_refused(labels: list[str]) -> None:
    with pytest.raises(ValueError):
        classify_sync("anything", labels)


def test_a_single_label_gets_everything() -> None:
    assert classify_sync("anything at all", ["misc"]) == ("misc", {"misc": 1.0})
