"""Composition root: build the Redis connection, queues and worker from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis.asyncio as redis

from agentqueue.ai.factory import build_provider, default_tools
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime
from agentqueue.handlers.agent_chat import BATCH, CHAT, AgentChatHandlers
from agentqueue.handlers.sessions import SessionStore

log = logging.getLogger("agentqueue")


def queue_defaults(settings: Settings) -> QueueDefaults:
    return QueueDefaults(
        attempts=settings.job_attempts,
        backoff_ms=settings.job_backoff_ms,
        keep_completed=settings.keep_completed,
        keep_failed=settings.keep_failed,
    )


@dataclass
class Services:
    """What the API needs at run time: the Redis client and the queues over it."""

    settings: Settings
    redis_url: str
    client: redis.Redis
    agent_queue: JobQueue
    embedded: EmbeddedValkey | None = None
    workers: list[WorkerRuntime] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, *, allow_embedded: bool = True) -> Services:
        embedded = None
        url = settings.external_redis_url
        if url is None:
            if not allow_embedded:
                raise RuntimeError("set REDIS_URL (or REDIS_HOST) to the Redis the queue uses")
            embedded = EmbeddedValkey(
                settings.data_dir / "valkey",
                port=settings.embedded_port,
                appendfsync=settings.embedded_appendfsync,
            )
            url = await embedded.start()
        client = connect(url)
        queue = JobQueue(
            settings.agent_queue_name, client,
            prefix=settings.queue_prefix, defaults=queue_defaults(settings),
        )
        return cls(settings, url, client, queue, embedded)

    async def start_worker(self) -> WorkerRuntime:
        worker = build_worker(self.settings, self.redis_url)
        await worker.start()
        self.workers.append(worker)
        return worker

    async def close(self) -> None:
        for worker in self.workers:
            await worker.stop(self.settings.shutdown_grace_s)
        self.workers.clear()
        await self.agent_queue.close()
        if self.embedded is not None:
            await self.embedded.stop()


def build_worker(settings: Settings, redis_url: str) -> WorkerRuntime:
    """A worker for the agent chat queue with the `chat` and `batch` handlers registered."""
    dataset = str(settings.agent_dataset) if settings.agent_dataset else None
    provider = build_provider(
        settings.ai_provider,
        dataset_path=dataset,
        openai_api_key=(
            settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        ),
        openai_base_url=settings.openai_base_url,
        openai_model=settings.openai_model,
    )
    tools = default_tools(dataset)
    session_client = connect(redis_url)
    sessions = SessionStore(
        session_client, prefix=settings.queue_prefix, max_messages=settings.max_history_messages,
    )
    handlers = AgentChatHandlers(provider, tools, sessions, max_steps=settings.agent_max_steps)
    worker = WorkerRuntime(
        settings.agent_queue_name,
        redis_url,
        prefix=settings.queue_prefix,
        options=WorkerOptions(
            concurrency=settings.queue_concurrency,
            job_timeout_s=settings.job_timeout_s,
            lock_duration_ms=settings.lock_duration_ms,
            stalled_interval_ms=settings.stalled_interval_ms,
            keep_completed=settings.keep_completed,
            keep_failed=settings.keep_failed,
        ),
    )
    worker.register(CHAT, handlers.chat)
    worker.register(BATCH, handlers.batch)
    worker.on_shutdown(provider.aclose)
    worker.on_shutdown(session_client.aclose)
    log.info("AI provider: %s", provider.name)
    return worker
