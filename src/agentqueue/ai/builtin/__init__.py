"""Offline AI tasks without a language model: pure, deterministic functions.

Each function does real work by a documented method and says what it cannot do:

- ``summarize``: extractive summary (TF-IDF centrality over the text's own sentences).
- ``analyze_sentiment``: lexicon sentiment (VADER).
- ``extract``: JSON Schema properties filled by rules (emails, dates, money, names given, ...);
  required fields it cannot find raise ``ExtractionIncomplete``.
- ``validate_labels`` / ``DEFAULT_LABELS``: the label set for classification.

Translation and free-form generation have no honest rule-based form and are not here. Nothing in
this package does I/O or knows about queues; callers add ``"provider": "builtin"`` to results.
"""

from agentqueue.ai.builtin.extraction import (
    ExtractionIncomplete,
    InvalidExtractionSchema,
    extract,
)
from agentqueue.ai.builtin.labels import DEFAULT_LABELS, InvalidLabels, validate_labels
from agentqueue.ai.builtin.sentiment import Sentiment, analyze_sentiment
from agentqueue.ai.builtin.summary import Summary, summarize

__all__ = [
    "DEFAULT_LABELS",
    "ExtractionIncomplete",
    "InvalidExtractionSchema",
    "InvalidLabels",
    "Sentiment",
    "Summary",
    "analyze_sentiment",
    "extract",
    "summarize",
    "validate_labels",
]
