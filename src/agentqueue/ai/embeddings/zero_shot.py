"""Zero-shot classification with sentence embeddings: which label is a text most about?

Each label is written into a short hypothesis, ``"This text is about {label}."``, and embedded
with all-MiniLM-L6-v2 next to the text. The scores are a softmax over the cosine similarities
between the text and each hypothesis, divided by a temperature of 0.05 (a scale of 20):

- Why 0.05: the model card says all-MiniLM-L6-v2 was fine-tuned with cross-entropy over the
  cosine similarities of sentence pairs, and a scale of 20 (temperature 0.05) is the default of
  that objective in sentence-transformers (MultipleNegativesRankingLoss), so the model's cosine
  gaps are meant to be read at that scale. In practice a cosine gap of 0.05 between two labels
  gives odds of e (about 2.7 to 1), a gap of 0.15 about 20 to 1: confident when the text is
  clearly about one label, spread out when it is not. A temperature of 1 would make every
  distribution nearly uniform (cosines differ by tenths), one of 0.01 nearly one-hot.
- The scores sum to 1 over the labels given: they say which label fits best, not whether any
  fits. An off-topic text still gets a winner; ``classify_detailed`` also returns the raw cosine
  similarities, which tell.

``classify`` is a coroutine (the model runs in a worker thread); ``classify_sync`` computes on
the calling thread. Label embeddings are cached per hypothesis text, so classifying many texts
against the same labels embeds each label once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentqueue.ai.embeddings.encoder import Vectors
from agentqueue.ai.embeddings.minilm import embed

DEFAULT_TEMPLATE = "This text is about {label}."
DEFAULT_TEMPERATURE = 0.05

_label_cache: dict[str, np.ndarray] = {}
_label_cache_lock = threading.Lock()
_LABEL_CACHE_MAX = 4096


@dataclass(frozen=True)
class Classification:
    label: str  # the best label
    scores: dict[str, float]  # softmax over the labels, in the order given; sums to 1
    similarities: dict[str, float]  # the raw cosine similarities behind the scores


def softmax(similarities: Sequence[float] | np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``similarities / temperature`` in float64; sums to 1."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    logits = np.asarray(similarities, dtype=np.float64) / temperature
    logits -= logits.max()
    weights = np.exp(logits)
    return weights / weights.sum()


def _check_labels(labels: Sequence[str]) -> list[str]:
    cleaned = [str(label) for label in labels]
    if not cleaned:
        raise ValueError("classify needs at least one label")
    if any(not label.strip() for label in cleaned):
        raise ValueError("labels must not be empty")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError("labels must be distinct")
    return cleaned


def embed_labels(labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> Vectors:
    """Embeddings of ``template.format(label=...)`` for each label, cached."""
    hypotheses = [template.format(label=label) for label in labels]
    with _label_cache_lock:
        missing = [h for h in dict.fromkeys(hypotheses) if h not in _label_cache]
    if missing:
        vectors = embed(missing)
        with _label_cache_lock:
            if len(_label_cache) + len(missing) > _LABEL_CACHE_MAX:
                _label_cache.clear()
            _label_cache.update(zip(missing, vectors, strict=True))
    with _label_cache_lock:
        cached = [_label_cache.get(h) for h in hypotheses]
    if any(v is None for v in cached):  # evicted meanwhile by another thread: embed again
        return embed(hypotheses)
    return np.vstack([v for v in cached if v is not None]).astype(np.float32)


def classify_vector(
    vector: np.ndarray,
    labels: Sequence[str],
    *,
    template: str = DEFAULT_TEMPLATE,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Classification:
    """Classify an already embedded text (a unit vector from ``embed``)."""
    names = _check_labels(labels)
    similarities = embed_labels(names, template) @ np.asarray(vector, dtype=np.float32)
    scores = softmax(similarities, temperature)
    best = int(np.argmax(scores))
    return Classification(
        label=names[best],
        scores={name: float(s) for name, s in zip(names, scores, strict=True)},
        similarities={name: float(s) for name, s in zip(names, similarities, strict=True)},
    )


def classify_detailed(
    text: str,
    labels: Sequence[str],
    *,
    template: str = DEFAULT_TEMPLATE,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Classification:
    """Like ``classify``, also returning the cosine similarities. Computes on this thread."""
    _check_labels(labels)
    return classify_vector(embed([text])[0], labels, template=template, temperature=temperature)


def classify_sync(
    text: str,
    labels: list[str],
    *,
    template: str = DEFAULT_TEMPLATE,
    temperature: float = DEFAULT_TEMPERATURE,
) -> tuple[str, dict[str, float]]:
    """``classify`` on the calling thread (tens of milliseconds once the model is loaded)."""
    result = classify_detailed(text, labels, template=template, temperature=temperature)
    return result.label, result.scores


async def classify(
    text: str,
    labels: list[str],
    *,
    template: str = DEFAULT_TEMPLATE,
    temperature: float = DEFAULT_TEMPERATURE,
) -> tuple[str, dict[str, float]]:
    """The label ``text`` is most about, and a score per label (softmax, sums to 1).

    The embedding runs in a worker thread, so the event loop keeps running.
    """
    return await asyncio.to_thread(
        classify_sync, text, labels, template=template, temperature=temperature
    )
