"""The AI tasks of the seeds (summarize, classify, sentiment, translate, extract, complete, embed),
each done by a language model when the provider is one, or by the builtin methods offline.

Every function returns a `TaskOutput`: the task's result in the shape the seeds document, plus
the provider and model that produced it. Token usage is metered by the caller's provider wrapper.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from agentqueue.ai.builtin.extraction import ExtractionIncomplete
from agentqueue.ai.builtin.extraction import extract as builtin_extract
from agentqueue.ai.builtin.labels import DEFAULT_LABELS
from agentqueue.ai.builtin.sentiment import analyze_sentiment
from agentqueue.ai.builtin.summary import summarize as builtin_summarize
from agentqueue.ai.providers.base import (
    CapabilityUnavailable,
    Provider,
    ProviderError,
    TextCallback,
)
from agentqueue.ai.types import ChatMessage

BUILTIN = "builtin"
ENABLE_LLM = "set OPENAI_API_KEY (or ANTHROPIC_API_KEY) to use a language model"


class TaskOutput(BaseModel):
    output: dict[str, Any]
    provider: str
    model: str


class TaskInputError(ValueError):
    """The input can never succeed (retrying will not help)."""


def _is_builtin(provider: Provider) -> bool:
    return provider.name == BUILTIN


async def _ask(
    provider: Provider,
    system: str,
    user: str,
    *,
    model: str | None,
    json_schema: dict[str, Any] | None = None,
    on_text: TextCallback | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> tuple[str, str]:
    reply = await provider.chat(
        [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)],
        [], model=model, json_schema=json_schema, on_text=on_text,
        max_tokens=max_tokens, temperature=temperature,
    )
    if not reply.content:
        raise ProviderError(f"{provider.name} returned an empty answer")
    return reply.content, reply.model


def _json_answer(text: str, schema: dict[str, Any], provider: Provider) -> dict[str, Any]:
    """Parse and validate a model's structured answer; a bad one is retryable, not accepted."""
    import jsonschema  # ~50 ms to import: loaded by the first extraction, not at start

    try:
        data = json.loads(text)
        jsonschema.validate(data, schema)
    except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
        message = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        raise ProviderError(f"{provider.name} answered JSON that does not fit the schema: "
                            f"{message}") from exc
    if not isinstance(data, dict):
        raise ProviderError(f"{provider.name} answered JSON that is not an object")
    return data


async def summarize(
    text: str,
    provider: Provider,
    *,
    model: str | None = None,
    max_sentences: int | None = None,
    on_text: TextCallback | None = None,
) -> TaskOutput:
    if _is_builtin(provider):
        try:
            found = builtin_summarize(text, max_sentences=max_sentences)
        except ValueError as exc:
            raise TaskInputError(str(exc)) from exc
        return TaskOutput(
            output={"summary": found.summary, "originalLength": found.original_length,
                    "summaryLength": found.summary_length, "method": "extractive"},
            provider=BUILTIN, model="builtin-extractive",
        )
    limit = f" in at most {max_sentences} sentences" if max_sentences else ""
    summary, used = await _ask(
        provider,
        f"Summarize the user's text{limit}. Keep facts exactly as stated; add nothing.",
        text, model=model, on_text=on_text,
    )
    return TaskOutput(
        output={"summary": summary, "originalLength": len(text), "summaryLength": len(summary)},
        provider=provider.name, model=used,
    )


async def classify(
    text: str, provider: Provider, *, labels: list[str] | None = None, model: str | None = None
) -> TaskOutput:
    choices = labels or list(DEFAULT_LABELS)
    if _is_builtin(provider):
        # numpy and the embedding model load with the first classification, not at start.
        from agentqueue.ai.embeddings.zero_shot import classify as zero_shot_classify

        label, scores = await zero_shot_classify(text, choices)
        return TaskOutput(
            output={"label": label, "scores": scores, "labels": choices,
                    "method": "zero-shot sentence embeddings"},
            provider=BUILTIN, model="all-MiniLM-L6-v2",
        )
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": choices},
            "scores": {
                "type": "object",
                "properties": {c: {"type": "number", "minimum": 0, "maximum": 1} for c in choices},
            },
        },
        "required": ["label"],
    }
    answer, used = await _ask(
        provider,
        "Classify the user's text into exactly one of these labels: " + ", ".join(choices)
        + ". Give a confidence between 0 and 1 for every label in `scores`.",
        text, model=model, json_schema=schema,
    )
    data = _json_answer(answer, schema, provider)
    return TaskOutput(
        output={"label": data["label"], "scores": data.get("scores", {}), "labels": choices},
        provider=provider.name, model=used,
    )


SENTIMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "score": {"type": "number", "minimum": -1, "maximum": 1},
    },
    "required": ["sentiment", "score"],
}


async def sentiment(text: str, provider: Provider, *, model: str | None = None) -> TaskOutput:
    if _is_builtin(provider):
        found = analyze_sentiment(text)
        return TaskOutput(
            output={"sentiment": found.sentiment, "score": found.score, "scores": found.scores,
                    "method": "VADER lexicon"},
            provider=BUILTIN, model="vader-lexicon",
        )
    answer, used = await _ask(
        provider,
        "Judge the sentiment of the user's text: positive, negative or neutral, with a score "
        "from -1 (most negative) to 1 (most positive).",
        text, model=model, json_schema=SENTIMENT_SCHEMA,
    )
    data = _json_answer(answer, SENTIMENT_SCHEMA, provider)
    return TaskOutput(output=data, provider=provider.name, model=used)


async def translate(
    text: str,
    target_language: str,
    provider: Provider,
    *,
    source_language: str | None = None,
    model: str | None = None,
    on_text: TextCallback | None = None,
) -> TaskOutput:
    if _is_builtin(provider):
        raise CapabilityUnavailable(f"translation needs a language model: {ENABLE_LLM}")
    source = f" from {source_language}" if source_language else ""
    translation, used = await _ask(
        provider,
        f"Translate the user's text{source} into {target_language}. Answer with the "
        "translation only.",
        text, model=model, on_text=on_text,
    )
    return TaskOutput(
        output={"translation": translation, "targetLanguage": target_language,
                **({"sourceLanguage": source_language} if source_language else {})},
        provider=provider.name, model=used,
    )


def check_schema(schema: dict[str, Any]) -> None:
    """A JSON schema for extraction must itself be valid and describe an object."""
    import jsonschema  # ~50 ms to import: loaded by the first extraction, not at start

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise TaskInputError(f"schema is not a valid JSON Schema: {exc.message}") from exc
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise TaskInputError("schema must describe an object with `properties`")


async def extract(
    text: str,
    schema: dict[str, Any],
    provider: Provider,
    *,
    names: list[str] | None = None,
    model: str | None = None,
) -> TaskOutput:
    check_schema(schema)
    if _is_builtin(provider):
        try:
            data = builtin_extract(text, schema, names=names)
        except ExtractionIncomplete as exc:
            raise TaskInputError(str(exc)) from exc
        return TaskOutput(output={"data": data, "method": "pattern extraction"},
                          provider=BUILTIN, model="builtin-patterns")
    answer, used = await _ask(
        provider,
        "Extract from the user's text the fields the JSON schema describes. Use only what the "
        "text states; leave out fields it does not state.",
        text, model=model, json_schema=schema,
    )
    return TaskOutput(output={"data": _json_answer(answer, schema, provider)},
                      provider=provider.name, model=used)


async def complete(
    messages: list[ChatMessage],
    provider: Provider,
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    on_text: TextCallback | None = None,
) -> TaskOutput:
    if _is_builtin(provider):
        raise CapabilityUnavailable(f"free-form generation needs a language model: {ENABLE_LLM}")
    reply = await provider.chat(
        messages, [], model=model, max_tokens=max_tokens, temperature=temperature,
        on_text=on_text,
    )
    if not reply.content:
        raise ProviderError(f"{provider.name} returned an empty answer")
    return TaskOutput(output={"content": reply.content}, provider=provider.name,
                      model=reply.model)


async def embed(texts: list[str], provider: Provider, *, model: str | None = None) -> TaskOutput:
    result = await provider.embed(texts, model=model)
    return TaskOutput(
        output={"embeddings": result.vectors, "dimensions": result.dimensions,
                "count": len(result.vectors)},
        provider=provider.name, model=result.model,
    )
