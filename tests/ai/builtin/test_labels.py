from __future__ import annotations

import pytest

from agentqueue.ai.builtin import DEFAULT_LABELS, InvalidLabels, validate_labels


def test_no_labels_means_the_default_set() -> None:
    assert validate_labels(None) == [
        "business",
        "technology",
        "sports",
        "politics",
        "entertainment",
        "health",
        "science",
    ]
    assert validate_labels(None) == list(DEFAULT_LABELS)


def test_given_labels_are_trimmed_and_keep_their_order() -> None:
    assert validate_labels([" billing ", "bug report", "feature"]) == [
        "billing",
        "bug report",
        "feature",
    ]


def test_fifty_labels_are_allowed() -> None:
    labels = [f"label-{n}" for n in range(50)]
    assert validate_labels(labels) == labels


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "1 to 50 labels, got 0"),
        ([f"label-{n}" for n in range(51)], "1 to 50 labels, got 51"),
        (["spam", "  "], "label 2 is empty"),
        (["spam", ""], "label 2 is empty"),
        (["Spam", "ham", "spam "], "repeated: 'spam'"),
        (["spam", 3], "label 2 must be a string"),
        ("spam", "not a single string"),
    ],
)
def test_unusable_label_lists_are_rejected(labels: list[str], message: str) -> None:
    with pytest.raises(InvalidLabels, match=message):
        validate_labels(labels)


def test_invalid_labels_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_labels([])
