"""Chat providers: OpenAI- and Anthropic-compatible clients and the offline builtin rules.

The SDK-backed ones are imported where they are built (`agentqueue.ai.factory`): importing the
`anthropic` and `openai` SDKs takes seconds, which a process that never calls them (an API, a
worker on the builtin provider) should not pay at start.
"""

from agentqueue.ai.providers.base import Provider, ProviderError, ProviderNotConfigured
from agentqueue.ai.providers.builtin import BuiltinProvider

__all__ = [
    "BuiltinProvider",
    "Provider",
    "ProviderError",
    "ProviderNotConfigured",
]
