"""Chat providers: an OpenAI-compatible client and the offline builtin rules."""

from agentqueue.ai.providers.base import Provider, ProviderError, ProviderNotConfigured
from agentqueue.ai.providers.builtin import BuiltinProvider
from agentqueue.ai.providers.openai_provider import OpenAIProvider

__all__ = [
    "BuiltinProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderError",
    "ProviderNotConfigured",
]
