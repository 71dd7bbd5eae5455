"""The built-in job types: each family module (agent_chat, ai_tasks, webhooks, chat_webhooks,
mail, documents, training, data_conversion, workflows, bulk) defines its types on a
`JobRegistry` of its own, with the same `job` decorator a user's `App.job` is, and
`builtin_registry` lists them all, in that order.

Their queues are settings (AGENT_QUEUE_NAME, …), read when the types are served.
"""

from __future__ import annotations

from agentqueue.config import Settings
from agentqueue.registry import JobRegistry


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


def email_queue(settings: Settings) -> str:
    return settings.email_queue_name


def jobs_queue(settings: Settings) -> str:
    return settings.jobs_queue_name


def builtin_registry() -> JobRegistry:
    """Every family's types, in one registry."""
    from agentqueue.handlers import (
        agent_chat,
        ai_tasks,
        bulk,
        chat_webhooks,
        data_conversion,
        documents,
        mail,
        training,
        webhooks,
        workflows,
    )

    return JobRegistry([*agent_chat.jobs, *ai_tasks.jobs, *webhooks.jobs, *chat_webhooks.jobs,
                        *mail.jobs, *documents.jobs, *training.jobs, *data_conversion.jobs,
                        *workflows.jobs, *bulk.jobs])
