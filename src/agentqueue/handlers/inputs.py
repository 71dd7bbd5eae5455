"""The data each AI job type accepts, validated by the API before queueing and by the worker
before running (a job added straight to Redis, by Node BullMQ say, is checked too)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_TEXT = 200_000
MAX_LABELS = 50
MAX_EMBED_TEXTS = 256
# Something other than whitespace: a provider name, a label.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]


class JobInput(BaseModel):
    """Fields every AI job may carry: who asked, and which provider and model to use."""

    # Strict: JSON types as they are (`true` is not a number, `"5"` not an integer), as the
    # schema says; nested objects are still read from dicts.
    model_config = ConfigDict(extra="allow", strict=True)

    provider: Name | None = Field(None, description="openai, anthropic or builtin; default: env")
    model: str | None = Field(None, max_length=200)
    userId: str | None = Field(None, max_length=200)
    organizationId: str | None = Field(None, max_length=200)


class SummarizeInput(JobInput):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    maxSentences: int | None = Field(None, ge=1, le=100)


class ClassifyInput(JobInput):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    labels: list[Name] | None = Field(None, min_length=1, max_length=MAX_LABELS)

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str] | None) -> list[str] | None:
        if labels is None:
            return None
        cleaned = [label.strip() for label in labels]
        if any(not label for label in cleaned):
            raise ValueError("labels must be non-empty strings")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("labels must be unique")
        return cleaned


class SentimentInput(JobInput):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class TranslateInput(JobInput):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    targetLanguage: str = Field(min_length=2, max_length=50)
    sourceLanguage: str | None = Field(None, min_length=2, max_length=50)


class ExtractInput(JobInput):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    schema_: dict[str, Any] = Field(alias="schema")
    names: list[str] | None = Field(None, max_length=1000)


class CompletionMessage(BaseModel):
    model_config = ConfigDict(strict=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_TEXT)


class CompletionInput(JobInput):
    """seed 004 `generate-completion`: a message in a stored conversation, or explicit messages."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["message"]}, {"required": ["messages"]}]}
    )

    conversationId: str | None = Field(None, max_length=200)
    message: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    messages: list[CompletionMessage] | None = Field(None, min_length=1, max_length=500)
    maxTokens: int | None = Field(None, ge=1, le=200_000)
    temperature: float | None = Field(None, ge=0, le=2)

    @model_validator(mode="after")
    def _something_to_answer(self) -> CompletionInput:
        if self.message is None and not self.messages:
            raise ValueError("give `message` (with an optional conversationId) or `messages`")
        return self


class EmbeddingsInput(JobInput):
    """seed 004 `generate-embeddings`: one text or many."""

    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    texts: list[str] | None = Field(None, min_length=1, max_length=MAX_EMBED_TEXTS)

    @model_validator(mode="after")
    def _one_of_text_or_texts(self) -> EmbeddingsInput:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` or `texts`")
        return self

    @property
    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])
