"""The agent behind chat and batch jobs: providers, tools and the loop that joins them.

This package knows nothing about queues, HTTP or SQL; a job handler calls ``build_provider``,
``default_tools`` and ``run_agent`` and stores the ``AgentReply``.
"""

from agentqueue.ai.agent import AgentStepLimitExceeded, run_agent
from agentqueue.ai.factory import build_provider, default_tools
from agentqueue.ai.providers.base import Provider, ProviderError, ProviderNotConfigured
from agentqueue.ai.tools.base import Tool, ToolError, ToolRegistry
from agentqueue.ai.tools.dataset import DatasetError
from agentqueue.ai.types import (
    AgentReply,
    AgentStep,
    ChatMessage,
    ProviderReply,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = [
    "AgentReply",
    "AgentStep",
    "AgentStepLimitExceeded",
    "ChatMessage",
    "DatasetError",
    "Provider",
    "ProviderError",
    "ProviderNotConfigured",
    "ProviderReply",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "Usage",
    "build_provider",
    "default_tools",
    "run_agent",
]
