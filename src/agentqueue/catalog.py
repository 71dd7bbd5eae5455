"""Which queue runs each job type, and what data it accepts: one table for every API.

The built-in types are listed here; a user's types (`agentqueue.App`) are added with
`register`, by the process that serves them (`agentqueue worker|serve|api module:app`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agentqueue.config import Settings
from agentqueue.engine.middleware import Middleware
from agentqueue.handlers import inputs
from agentqueue.handlers.webhooks import WebhookInput


@dataclass(frozen=True)
class JobType:
    name: str  # the BullMQ job name
    queue: str
    # The data it accepts: checked at enqueue by every API and again by the worker.
    input: type[BaseModel]
    # A registered (user's) type brings its worker handler and its own job defaults; the
    # built-in types are wired to their handlers in `services.build_workers`.
    handler: Callable[[Any], Awaitable[Any]] | None = None
    attempts: int | None = None
    backoff: dict[str, Any] | None = None  # BullMQ's {"type": ..., "delay": ms}
    priority: int | None = None  # BullMQ's (lower runs first)
    timeout: float | None = None  # seconds; its worker's time limit for it


# name, the setting naming its queue, input model
_BUILTINS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("chat", "agent_queue_name", inputs.ChatInput),
    ("batch", "agent_queue_name", inputs.BatchInput),
    ("summarize", "ai_jobs_queue_name", inputs.SummarizeInput),
    ("classify", "ai_jobs_queue_name", inputs.ClassifyInput),
    ("sentiment", "ai_jobs_queue_name", inputs.SentimentInput),
    ("translate", "ai_jobs_queue_name", inputs.TranslateInput),
    ("extract", "ai_jobs_queue_name", inputs.ExtractInput),
    ("generate-completion", "ai_tasks_queue_name", inputs.CompletionInput),
    ("generate-embeddings", "ai_tasks_queue_name", inputs.EmbeddingsInput),
    ("agent-task", "agent_tasks_queue_name", inputs.AgentTaskInput),
    ("webhook", "webhooks_queue_name", WebhookInput),
)
BUILTIN_NAMES: frozenset[str] = frozenset(name for name, _, _ in _BUILTINS)

# The types this process serves besides the built-in ones (one process, one set of user types).
_registered: dict[str, JobType] = {}


def job_types(settings: Settings) -> dict[str, JobType]:
    builtin = {name: JobType(name, getattr(settings, queue), model)
               for name, queue, model in _BUILTINS}
    return {**builtin, **_registered}


def register(job_type: JobType) -> None:
    """Serve and accept `job_type` in this process, alongside the built-in types."""
    if job_type.name in BUILTIN_NAMES:
        raise ValueError(f"job type {job_type.name!r} is built in; choose another name")
    _registered[job_type.name] = job_type


def unregister(name: str) -> None:
    _registered.pop(name, None)


def registered() -> list[JobType]:
    """The types added with `register`, in the order they were added."""
    return list(_registered.values())


# The user's worker middleware this process runs (the installed App's), in order.
_middleware: list[Middleware] = []


def use_middleware(middleware: list[Middleware]) -> None:
    """Run `middleware` (after the built-in ones) in this process's workers."""
    _middleware[:] = middleware


def installed_middleware() -> list[Middleware]:
    return list(_middleware)
