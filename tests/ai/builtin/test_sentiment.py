from __future__ import annotations

import pytest

from agentqueue.ai.builtin import analyze_sentiment
from agentqueue.ai.builtin.sentiment import label_for


def test_clearly_positive_review() -> None:
    result = analyze_sentiment(
        "I absolutely love this blender. It is fast, quiet and easy to clean. "
        "Best purchase this year!"
    )
    assert result.sentiment == "positive"
    assert result.score > 0.5
    assert result.scores["pos"] > result.scores["neg"] == 0.0


def test_clearly_negative_review() -> None:
    result = analyze_sentiment(
        "Terrible service. The package arrived broken, support never answered, "
        "and I want my money back."
    )
    assert result.sentiment == "negative"
    assert result.score <= -0.05
    assert result.scores["neg"] > 0


def test_plain_facts_are_neutral() -> None:
    result = analyze_sentiment(
        "The package arrived on Tuesday. It contains a blender and a manual."
    )
    assert result.sentiment == "neutral"
    assert result.score == 0.0
    assert result.scores == {"pos": 0.0, "neu": 1.0, "neg": 0.0}


def test_negation_flips_the_reading() -> None:
    assert analyze_sentiment("The hotel was good.").sentiment == "positive"
    assert analyze_sentiment("The hotel was not good.").sentiment == "negative"


def test_scores_are_proportions_and_compound_is_bounded() -> None:
    result = analyze_sentiment("Great food, awful parking, friendly staff!!!")
    assert set(result.scores) == {"pos", "neu", "neg"}
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=0.01)
    assert -1.0 <= result.score <= 1.0


@pytest.mark.parametrize(
    ("compound", "label"),
    [
        (0.05, "positive"),
        (0.0499, "neutral"),
        (0.0, "neutral"),
        (-0.0499, "neutral"),
        (-0.05, "negative"),
        (0.9, "positive"),
        (-0.9, "negative"),
    ],
)
def test_standard_vader_thresholds(compound: float, label: str) -> None:
    assert label_for(compound) == label


@pytest.mark.parametrize("text", ["", "  \n "])
def test_empty_text_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="empty text"):
        analyze_sentiment(text)
