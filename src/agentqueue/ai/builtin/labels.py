"""Classification labels: the default set, in one place, and the check for a caller's own set."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_LABELS: tuple[str, ...] = (
    "business",
    "technology",
    "sports",
    "politics",
    "entertainment",
    "health",
    "science",
)
"""The labels a classification uses when the request names none."""

MAX_LABELS = 50


class InvalidLabels(ValueError):
    """A label list that cannot be used: empty, too long, or with blank or repeated labels."""


def validate_labels(labels: Sequence[str] | None) -> list[str]:
    """Return the labels to classify with: ``DEFAULT_LABELS`` when ``labels`` is None.

    A given list must hold 1 to 50 labels, each a non-empty string; surrounding whitespace is
    removed, and two labels that differ only in case or surrounding whitespace count as the same
    label (repeats are an error, not silently merged). Order is kept.
    """
    if labels is None:
        return list(DEFAULT_LABELS)
    if isinstance(labels, str):
        raise InvalidLabels("labels must be a list of strings, not a single string")
    if not 1 <= len(labels) <= MAX_LABELS:
        raise InvalidLabels(f"labels must hold 1 to {MAX_LABELS} labels, got {len(labels)}")
    cleaned: list[str] = []
    seen: dict[str, str] = {}
    repeated: list[str] = []
    for position, label in enumerate(labels):
        if not isinstance(label, str):
            raise InvalidLabels(
                f"label {position + 1} must be a string, got {type(label).__name__}"
            )
        text = label.strip()
        if not text:
            raise InvalidLabels(f"label {position + 1} is empty")
        key = text.casefold()
        if key in seen:
            repeated.append(text)
            continue
        seen[key] = text
        cleaned.append(text)
    if repeated:
        names = ", ".join(repr(label) for label in repeated)
        raise InvalidLabels(f"labels must be unique; repeated: {names}")
    return cleaned
