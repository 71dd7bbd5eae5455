"""The data each AI job type accepts, validated by the API before queueing and by the worker
before running (a job added straight to Redis, by Node BullMQ say, is checked too)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agentqueue.ai.tasks import TaskInputError, check_schema

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
    modelId: str | None = Field(
        None, min_length=1, max_length=100,
        description="a classifier a model-training job trained: used offline, labels ignored")

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

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        # Refused at enqueue, not after the job was queued and a provider was paid.
        try:
            check_schema(schema)
        except TaskInputError as exc:
            raise ValueError(str(exc).removeprefix("schema ")) from None
        return schema


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


# -- seed 000: the agent chat queue -------------------------------------------------------------

# The message size limit is also enforced against MAX_MESSAGE_CHARS by the API; this is the
# hard ceiling the schema documents.
MESSAGE_HARD_LIMIT = 100_000


def _setting(info: ValidationInfo, name: str) -> int | None:
    """An operator limit from the settings the API passes as context (the worker passes none)."""
    settings = (info.context or {}).get("settings")
    value = getattr(settings, name, None)
    return value if isinstance(value, int) else None


def _message_size(text: str, info: ValidationInfo) -> str:
    limit = _setting(info, "max_message_chars")
    if limit is not None and len(text) > limit:
        raise ValueError(f"must be at most {limit} characters (MAX_MESSAGE_CHARS)")
    return text


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MESSAGE_HARD_LIMIT)

    _size = field_validator("content")(_message_size)


class Metadata(BaseModel):
    """Free-form metadata; `priority` (high, normal, low) also sets the job's queue priority."""

    model_config = ConfigDict(extra="allow", strict=True)

    priority: Literal["high", "normal", "low"] | None = None


class ChatInput(JobInput):
    """A `chat` job: one message for the agent, in a session."""

    message: str = Field(min_length=1, max_length=MESSAGE_HARD_LIMIT)
    sessionId: str | None = Field(None, max_length=200)
    conversationHistory: list[HistoryEntry] | None = None
    metadata: Metadata | None = None

    _size = field_validator("message")(_message_size)


class BatchItem(BaseModel):
    model_config = ConfigDict(strict=True)

    message: str = Field(min_length=1, max_length=MESSAGE_HARD_LIMIT)
    sessionId: str | None = Field(None, max_length=200)
    conversationHistory: list[HistoryEntry] | None = None
    model: str | None = Field(None, max_length=200)

    _size = field_validator("message")(_message_size)


class BatchInput(JobInput):
    """A `batch` job: messages answered one after another (a bare string is a message)."""

    messages: list[BatchItem] = Field(min_length=1)
    metadata: Metadata | None = None

    @field_validator("messages", mode="before")
    @classmethod
    def _bare_strings_are_messages(cls, messages: Any) -> Any:
        # The worker takes a bare string as a message (a Node producer may send those).
        if isinstance(messages, list):
            return [{"message": m} if isinstance(m, str) else m for m in messages]
        return messages

    @field_validator("messages")
    @classmethod
    def _within_limit(cls, messages: list[BatchItem], info: ValidationInfo) -> list[BatchItem]:
        limit = _setting(info, "max_batch_messages")
        if limit is not None and len(messages) > limit:
            raise ValueError(f"at most {limit} per batch (MAX_BATCH_MESSAGES)")
        return messages


# -- seed 002: agent tasks ----------------------------------------------------------------------


class AgentTaskInput(JobInput):
    """An `agent-task`: an agent (by id) works on a title, description or prompt."""

    agent_id: str | None = Field(None, max_length=100)
    agentId: str | None = Field(None, max_length=100)
    title: str | None = Field(None, max_length=MAX_TEXT)
    description: str | None = Field(None, max_length=MAX_TEXT)
    prompt: str | None = Field(None, max_length=MAX_TEXT)
    context: Any = None

    @property
    def agent(self) -> str:
        return self.agent_id or self.agentId or "default"

    @model_validator(mode="after")
    def _known_agent_and_something_to_do(self, info: ValidationInfo) -> AgentTaskInput:
        if not (self.title or self.description or self.prompt):
            raise ValueError("an agent task needs a `title`, `description` or `prompt`")
        # The known agents come from the run-time registry (AGENTQUEUE_AGENTS_FILE).
        known = (info.context or {}).get("agents")
        if known is not None and self.agent not in known:
            raise ValueError(f"unknown agent {self.agent!r}; known: {', '.join(known)}")
        return self
