"""The provider interface: what the agent needs from a language model (or its stand-in).

Only ``chat`` with tools exists today. Streaming, completion and embedding will be added as
further methods; callers should treat a provider as this protocol and nothing more.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from agentqueue.ai.types import ChatMessage, ProviderReply, ToolSpec


class ProviderError(Exception):
    """A provider call failed. The message is safe to show a user (it never holds credentials).

    ``retryable`` is False when trying again cannot help (bad credentials, a rejected request),
    so a job handler can fail the job at once instead of spending its retries.
    """

    def __init__(
        self, message: str, *, retryable: bool = True, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class ProviderNotConfigured(ProviderError):
    """The requested provider cannot be used with the current settings."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@runtime_checkable
class Provider(Protocol):
    """A chat model that can ask for tools to be run."""

    name: str

    async def chat(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> ProviderReply:
        """Answer the conversation, or ask for tool calls whose results come back as messages."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...
