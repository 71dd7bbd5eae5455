"""Lexicon sentiment with VADER (Hutto & Gilbert, ICWSM 2014), no language model.

VADER scores each word from a human-rated lexicon (shipped inside the ``vaderSentiment`` package,
read from disk, nothing downloaded) and adjusts for negation ("not good"), boosters ("very"),
contrast ("but"), capitals and exclamation marks. Its ``compound`` score is the normalised sum,
in [-1, 1]; the label follows the thresholds VADER's authors recommend: compound >= 0.05 is
positive, compound <= -0.05 is negative, anything between is neutral.

It reads English, works best on short opinionated text (reviews, messages), and does not
understand sarcasm or domain meaning ("the price went down" scores neutral).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

SentimentLabel = Literal["positive", "negative", "neutral"]


class Sentiment(BaseModel):
    sentiment: SentimentLabel
    score: float = Field(ge=-1.0, le=1.0, description="VADER's compound score")
    scores: dict[str, float] = Field(
        description="Proportions of the text that read positive, neutral and negative"
        " (keys pos, neu, neg; they sum to about 1)"
    )


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    # Loading reads the ~7,500-entry lexicon file once; scoring keeps no state between calls.
    return SentimentIntensityAnalyzer()


def label_for(compound: float) -> SentimentLabel:
    """The label for a compound score, by VADER's standard thresholds."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def analyze_sentiment(text: str) -> Sentiment:
    """Score the sentiment of ``text``. Empty or whitespace-only text raises ``ValueError``."""
    if not text or not text.strip():
        raise ValueError("cannot analyse the sentiment of empty text")
    raw = _analyzer().polarity_scores(text)
    compound = float(raw["compound"])
    return Sentiment(
        sentiment=label_for(compound),
        score=compound,
        scores={key: float(raw[key]) for key in ("pos", "neu", "neg")},
    )
