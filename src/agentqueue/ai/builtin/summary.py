"""Extractive summaries: whole sentences chosen from the text, no language model.

Method (TF-IDF degree centrality, the idea behind LexRank without the random walk):

1. The text is split into sentences with ``pysbd`` (rule-based, knows "Dr.", "U.S.", "3.5", ...).
   A single line break counts as a space, a blank line ends a sentence. Every sentence is kept
   exactly as it appears in the text.
2. Each sentence becomes a TF-IDF vector over its content words: lower-cased, English stop words
   dropped, a plural "s" removed; term frequency within the sentence times the smoothed inverse
   sentence frequency ``ln((1 + n) / (1 + df)) + 1``; vectors are scaled to unit length.
3. A sentence's score is the sum of its cosine similarities to every other sentence: a sentence
   that shares the text's recurring subject matter scores high, an aside scores low. (With unit
   vectors that sum is ``v . (C - v) = v . C - 1`` where ``C`` is the sum of all vectors, so scoring
   is linear in the text's length.)
4. The best-scoring sentences are taken (ties go to the earlier sentence) and returned in their
   original order, joined by single spaces.

How many: ``max_sentences`` when given, otherwise ``round(ratio * sentences)``, at least one. A
text of one or two sentences is its own summary unless ``max_sentences`` asks for fewer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

# fmt: off
STOP_WORDS = frozenset(
    {
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and",
        "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
        "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during",
        "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
        "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is",
        "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not",
        "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves",
        "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that",
        "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
        "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
        "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
        "you", "your", "yours", "yourself", "yourselves", "said", "says", "say", "one", "two",
        "new", "may", "might", "must", "shall", "us", "per", "via", "yet",
    }
)
# fmt: on

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SINGLE_LINE_BREAK = re.compile(r"(?<![\r\n])\r?\n(?![ \t]*\r?\n)")
_SAFE_CUT = re.compile(r"(?<=[a-z0-9]{3}[.!?])\s+(?=[A-Z])|\n[ \t]*\r?\n")
CHUNK = 1_500
MAX_CHUNK = 10_000
_FALLBACK_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


class Summary(BaseModel):
    summary: str
    sentences: list[str]
    original_length: int
    summary_length: int


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd  # ~10 ms to import (all its languages): loaded by the first summary

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, each stripped of surrounding whitespace and verbatim.

    A single line break is read as a space (hard-wrapped text keeps its sentences whole); a blank
    line always ends a sentence. pysbd does the splitting, on a copy of the text with those line
    breaks blanked out character for character, so every piece maps back to the same span of the
    original, line breaks included. Should pysbd ever return a piece that is not in the text, in
    order, or for a stretch of more than ``MAX_CHUNK`` characters without a clear sentence end, a
    plain punctuation-and-capital rule is used instead.
    """
    flat = _SINGLE_LINE_BREAK.sub(lambda m: " " * len(m.group()), text)
    sentences: list[str] = []
    for offset, chunk in _chunks(flat):
        spans = None
        if len(chunk) <= MAX_CHUNK:
            spans = _spans([piece.strip() for piece in _segmenter().segment(chunk)], chunk)
        if spans is None:
            spans = _spans([piece.strip() for piece in _FALLBACK_SPLIT.split(chunk)], chunk)
        if spans is None:  # pragma: no cover - the fallback's pieces are slices of the chunk
            raise AssertionError("sentence splitting lost text")
        sentences.extend(text[offset + start : offset + end] for start, end in spans)
    return sentences


def _chunks(text: str) -> list[tuple[int, str]]:
    """``text`` cut at clear sentence ends into pieces of about ``CHUNK`` characters.

    pysbd's time grows faster than the length of its input, so long texts are fed to it in
    pieces. A cut is made only at a blank line, or where a run of three or more lower-case
    letters or digits ends in ". ", "! " or "? " before a capital: no abbreviation is likely there.
    """
    chunks = []
    start = 0
    for cut in _SAFE_CUT.finditer(text):
        if cut.end() - start >= CHUNK:
            chunks.append((start, text[start : cut.end()]))
            start = cut.end()
    if start < len(text):
        chunks.append((start, text[start:]))
    return chunks


def _spans(pieces: list[str], text: str) -> list[tuple[int, int]] | None:
    """Where each piece is in ``text``, in order; None if one is missing."""
    spans = []
    cursor = 0
    for piece in pieces:
        if not piece:
            continue
        found = text.find(piece, cursor)
        if found < 0:
            return None
        cursor = found + len(piece)
        spans.append((found, cursor))
    return spans


def _terms(sentence: str) -> list[str]:
    terms = []
    for word in _WORD.findall(sentence.lower()):
        word = word.removesuffix("'s")
        if word in STOP_WORDS or len(word) < 2 or word.isdigit():
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        terms.append(word)
    return terms


def centrality_scores(sentences: list[str]) -> list[float]:
    """Each sentence's summed TF-IDF cosine similarity to all the other sentences."""
    term_lists = [_terms(sentence) for sentence in sentences]
    count = len(sentences)
    document_frequency: Counter[str] = Counter()
    for terms in term_lists:
        document_frequency.update(set(terms))
    idf = {
        term: math.log((1 + count) / (1 + frequency)) + 1
        for term, frequency in document_frequency.items()
    }
    vectors: list[dict[str, float]] = []
    for terms in term_lists:
        weights = {term: tf * idf[term] for term, tf in Counter(terms).items()}
        norm = math.sqrt(sum(weight * weight for weight in weights.values()))
        vectors.append({term: weight / norm for term, weight in weights.items()} if norm else {})
    total: Counter[str] = Counter()
    for vector in vectors:
        total.update(vector)
    scores = []
    for vector in vectors:
        if not vector:
            scores.append(0.0)
            continue
        scores.append(sum(weight * total[term] for term, weight in vector.items()) - 1.0)
    return scores


def summarize(text: str, *, max_sentences: int | None = None, ratio: float = 0.3) -> Summary:
    """An extractive summary of ``text``: its most central sentences, verbatim, in order.

    Raises ``ValueError`` for empty or whitespace-only text, a ``max_sentences`` below 1, or a
    ``ratio`` outside (0, 1].
    """
    if not text or not text.strip():
        raise ValueError("cannot summarise empty text: the text has no sentences")
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences must be at least 1, got {max_sentences}")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be above 0 and at most 1, got {ratio}")
    sentences = split_sentences(text)
    if max_sentences is not None:
        wanted = max_sentences
    elif len(sentences) <= 2:
        wanted = len(sentences)
    else:
        wanted = max(1, round(ratio * len(sentences)))
    if wanted >= len(sentences):
        chosen = sentences
    else:
        scores = centrality_scores(sentences)
        ranked = sorted(range(len(sentences)), key=lambda index: (-scores[index], index))
        chosen = [sentences[index] for index in sorted(ranked[:wanted])]
    summary = " ".join(chosen)
    return Summary(
        summary=summary,
        sentences=chosen,
        original_length=len(text),
        summary_length=len(summary),
    )
