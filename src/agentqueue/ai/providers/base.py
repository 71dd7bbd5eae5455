"""The provider interface: what the agent and the AI tasks need from a language model.

One method answers a conversation (``chat``): with tools, optionally streaming its text through
``on_text``, optionally constrained to a JSON schema. ``complete`` is ``chat`` with one user
message. ``embed`` turns texts into vectors. Callers treat a provider as this protocol only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from agentqueue.ai.types import ChatMessage, EmbeddingResult, ProviderReply, ToolSpec

# Called with each piece of text as the model streams it.
TextCallback = Callable[[str], Awaitable[None]]


class ProviderError(Exception):
    """A provider call failed. The message is safe to show a user (it never holds credentials).

    ``retryable`` is False when trying again cannot help (bad credentials, a rejected request),
    so a job handler can fail the job at once instead of spending its retries.
    """

    def __init__(
        self, message: str, *, retryable: bool = True, status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        # What the provider asked to wait (a 429's `Retry-After`), when it said.
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return self.message


MAX_ERROR_TEXT = 300


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from a response's `retry-after-ms` or `Retry-After` (seconds) header;
    None when it has neither (an HTTP date is not used: clocks differ)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def safe_error_text(text: str, secret: str) -> str:
    """An error message fit to show: the secret removed (before any cut), at most 300 chars."""
    text = text.replace(secret, "[redacted]") if secret else text
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


class ProviderNotConfigured(ProviderError):
    """The requested provider cannot be used with the current settings."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class CapabilityUnavailable(ProviderError):
    """The provider cannot do this honestly (the builtin provider asked to translate, say).

    The message names the setting that enables it, e.g. ``OPENAI_API_KEY``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@runtime_checkable
class Provider(Protocol):
    """A chat model that can ask for tools to be run."""

    model: str  # the default model, used when a call names none

    @property
    def name(self) -> str:
        """The provider's name ("openai", ...); a fallback chain's is the one that answered
        its latest call, so it is read, never set, by callers."""
        ...

    async def chat(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
    ) -> ProviderReply:
        """Answer the conversation, or ask for tool calls whose results come back as messages.

        ``json_schema``: the answer's content must be a JSON document valid against it (the
        provider uses its structured-output mode). ``on_text``: stream the answer, awaiting the
        callback with each piece of text as it arrives; the reply still holds the whole text.
        """
        ...

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        """One vector per text, in order."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...
