"""The registry the built-in job types are defined on, with the same `job` decorator a user's
`App.job` is: each family module (agent_chat, ai_tasks, webhooks) adds its types to it.

Their queues are settings (AGENT_QUEUE_NAME, …), read when the types are served.
"""

from __future__ import annotations

from agentqueue.config import Settings
from agentqueue.registry import JobRegistry

builtin = JobRegistry()


def agent_queue(settings: Settings) -> str:
    return settings.agent_queue_name


def ai_jobs_queue(settings: Settings) -> str:
    return settings.ai_jobs_queue_name


def ai_tasks_queue(settings: Settings) -> str:
    return settings.ai_tasks_queue_name


def agent_tasks_queue(settings: Settings) -> str:
    return settings.agent_tasks_queue_name


def webhooks_queue(settings: Settings) -> str:
    return settings.webhooks_queue_name


def builtin_registry() -> JobRegistry:
    """`builtin` with every family's types defined on it."""
    # Importing a family defines its types (a module is imported once: no type twice).
    from agentqueue.handlers import agent_chat, ai_tasks, webhooks  # noqa: F401

    return builtin
