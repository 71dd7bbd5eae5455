"""Request bodies of seeds 003 (`/v1/jobs/*`) and 004 (`/ai/queue`): each job type's input model,
closed. A job's data in Redis may carry more (a Node producer's extras); a request naming a field
the API does not know is refused by name instead of having it dropped without a word.

The classes keep their input model's name, so the OpenAPI schema names them as before.
"""

from __future__ import annotations

from pydantic import ConfigDict

from agentqueue.handlers import inputs

CLOSED = ConfigDict(extra="forbid")


class SummarizeInput(inputs.SummarizeInput):
    model_config = CLOSED


class ClassifyInput(inputs.ClassifyInput):
    model_config = CLOSED


class SentimentInput(inputs.SentimentInput):
    model_config = CLOSED


class TranslateInput(inputs.TranslateInput):
    model_config = CLOSED


class ExtractInput(inputs.ExtractInput):
    model_config = CLOSED


class CompletionInput(inputs.CompletionInput):
    model_config = CLOSED
