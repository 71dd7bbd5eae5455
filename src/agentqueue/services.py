"""Composition root: build the Redis connection, queues and worker from settings."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis

from agentqueue import tracing
from agentqueue.ai.agents import AgentRegistry
from agentqueue.ai.factory import available_provider_names, default_tools
from agentqueue.ai.pricing import PriceTable
from agentqueue.config import Settings
from agentqueue.context import WorkerResources
from agentqueue.core.admission import BacklogLimits
from agentqueue.core.budgets import Budgets
from agentqueue.core.limits import LimitStore
from agentqueue.core.queue_profiles import queue_defaults
from agentqueue.core.submission import JobSubmitter
from agentqueue.definition import JobDefinition, validation_context
from agentqueue.engine.connection import connect, connect_for_requests
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.engine.health import RedisHealth
from agentqueue.engine.middleware import Middleware
from agentqueue.engine.queue import JobQueue, ReplicaWait
from agentqueue.engine.rate_limit import WindowCounters
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime, standard_middleware
from agentqueue.handlers.ai_runtime import AiRuntime, ProviderLimits
from agentqueue.handlers.flow_control import FlowControl
from agentqueue.handlers.notify_middleware import Notifications
from agentqueue.handlers.providers import ProviderPool
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.handlers.sessions import SessionStore
from agentqueue.handlers.tracing_middleware import Tracing
from agentqueue.handlers.usage_metering import UsageMetering
from agentqueue.maintenance.duties import maintenance_runner
from agentqueue.maintenance.runner import MaintenanceRunner
from agentqueue.metrics.aggregate import MetricsRecorder
from agentqueue.metrics.middleware import JobMetrics
from agentqueue.records.db import PoolLimits
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.registry import JobRegistry
from agentqueue.serving import installed_middleware, served

if TYPE_CHECKING:
    from agentqueue.ai.providers.base import Provider
    from agentqueue.core.documents import Documents

log = logging.getLogger("agentqueue")


@dataclass
class Services:
    """What the API needs at run time: Redis, the queues, the records, and (with `serve`)
    this process's workers and the maintenance duties."""

    settings: Settings
    redis_url: str
    client: redis.Redis
    queues: dict[str, JobQueue]
    records: Records
    submitter: JobSubmitter
    embedded: EmbeddedValkey | None = None
    workers: WorkerGroup | None = None
    maintenance: MaintenanceRunner | None = None
    redis_health: RedisHealth | None = None
    # The agents `agent-task` jobs may name, as the workers know them (checked at enqueue).
    agents: AgentRegistry = dataclasses.field(default_factory=lambda: AgentRegistry([]))
    # The job types this process accepts (and, with `serve`, runs): one registry for all APIs.
    registry: JobRegistry = dataclasses.field(default_factory=served)
    # This process's share of the metrics (`GET /metrics` shows every process's).
    metrics: MetricsRecorder | None = None
    # Rate limits, tenant caps and budgets in force (settings and run-time changes).
    limits: LimitStore | None = None
    budgets: Budgets | None = None
    # The document search index's service, made on first use (its providers embed queries).
    _documents: Documents | None = None

    @classmethod
    async def start(cls, settings: Settings, *, allow_embedded: bool = True) -> Services:
        embedded = None
        url = settings.external_redis_url
        if url is None:
            if not allow_embedded:
                raise RuntimeError("set REDIS_URL (or REDIS_HOST) to the Redis the queue uses")
            embedded = EmbeddedValkey.take_launched(
                settings.data_dir / "valkey", port=settings.embedded_port,
                appendfsync=settings.embedded_appendfsync)
        # The embedded server starts while the records database is migrated: neither needs
        # the other, and each mostly waits (on a child process, on SQL).
        records, started_url = await _together(
            open_records(settings), embedded.start() if embedded is not None else None,
            on_failure_close=embedded)
        url = started_url or url
        assert url is not None
        # The API's client: bounded commands, refused at once while Redis is known to be down.
        timeout = settings.redis_request_timeout_s
        health = RedisHealth(url, probe_interval_s=min(0.5, timeout), timeout_s=timeout)
        client = connect_for_requests(url, health=health, timeout_s=timeout)
        registry = served()
        queues = open_queues(settings, client, registry)
        limits = BacklogLimits(client, records, prefix=settings.queue_prefix,
                               max_queue=settings.max_queue_backlog,
                               max_tenant=settings.max_tenant_backlog,
                               retry_after_s=settings.backlog_retry_after_s)
        rules = LimitStore(client, settings)
        budgets = Budgets(client, rules)
        submitter = JobSubmitter(queues, records, limits, lease_s=settings.submit_lease_s,
                                 budgets=budgets)
        metrics = MetricsRecorder(client, prefix=settings.queue_prefix)
        submitter.on_queued = metrics.queued
        return cls(settings, url, client, queues, records, submitter, embedded,
                   redis_health=health, agents=load_agents(settings), registry=registry,
                   limits=rules, budgets=budgets, metrics=metrics)

    def documents(self) -> Documents:
        """Search, list and delete documents (those `document-processing` jobs indexed)."""
        if self._documents is None:
            self._documents = open_documents(self.settings, self.records)
        return self._documents

    def job_type(self, name: str) -> JobDefinition | None:
        return self.registry.get(name)

    def validation_context(self) -> dict[str, Any]:
        """What input models check against at enqueue, as the worker does."""
        return validation_context(self.settings, self.agents.ids())

    @property
    def agent_queue(self) -> JobQueue:
        return self.queues[self.settings.agent_queue_name]

    @property
    def provider_names(self) -> list[str]:
        """Providers a job may ask for, given the keys configured."""
        return available_provider_names(
            openai_api_key=self.settings.secret("openai_api_key"),
            anthropic_api_key=self.settings.secret("anthropic_api_key"),
        )

    async def start_workers(self) -> None:
        self.workers = build_workers(self.settings, self.redis_url, records=self.records,
                                     registry=self.registry)
        await self.workers.start()

    def start_maintenance(self) -> None:
        self.maintenance = start_maintenance(self.settings, self.client, self.records,
                                             self.queues)

    async def close(self) -> None:
        if self.maintenance is not None:
            await self.maintenance.stop()
        if self.workers is not None:
            await self.workers.stop(self.settings.shutdown_grace_s)
            self.workers = None
        if self.metrics is not None:
            await self.metrics.close()
        if self._documents is not None:
            await self._documents.aclose()
        for queue in self.queues.values():
            await queue.close()
        if self.redis_health is not None:
            await self.redis_health.close()
        await self.records.close()
        if self.embedded is not None:
            await self.embedded.stop()


async def _together(
    records: Coroutine[Any, Any, Records], redis_url: Coroutine[Any, Any, str] | None,
    *, on_failure_close: EmbeddedValkey | None,
) -> tuple[Records, str | None]:
    """Open the records and start the embedded server at once; if either fails, undo the
    other and raise the first failure."""
    opening = asyncio.ensure_future(records)
    starting = asyncio.ensure_future(redis_url) if redis_url is not None else None
    results = await asyncio.gather(opening, *([starting] if starting else []),
                                   return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is None:
        return opening.result(), starting.result() if starting else None
    if not isinstance(results[0], BaseException):
        await opening.result().close()
    if on_failure_close is not None:
        await on_failure_close.stop()
    raise failure


def open_documents(settings: Settings, records: Records) -> Documents:
    """The documents service over `records`, with providers built from `settings` as needed."""
    from agentqueue.core.documents import Documents
    from agentqueue.records.documents import DocumentIndex

    pools: list[ProviderPool] = []

    def provider(name: str) -> Provider:
        if not pools:
            pools.append(ProviderPool(settings))
        return pools[0].get(name)

    async def close() -> None:
        for pool in pools:
            await pool.aclose()

    return Documents(DocumentIndex(records), provider, close)


async def open_records(settings: Settings) -> Records:
    """The records database, migrated to the current schema."""
    url = settings.records_url
    await upgrade(url)
    pool = PoolLimits(size=settings.database_pool_size, overflow=settings.database_pool_overflow,
                      timeout_s=settings.database_pool_timeout_s)
    return await Records.connect(url, pool=pool)


def open_queues(
    settings: Settings, client: redis.Redis, registry: JobRegistry | None = None
) -> dict[str, JobQueue]:
    """The queues of the built-in and served types (`served()` by default)."""
    return {name: open_queue(settings, client, name)
            for name in queue_names(settings, registry)}


def open_queue(settings: Settings, client: redis.Redis, name: str) -> JobQueue:
    return JobQueue(name, client, prefix=settings.queue_prefix,
                    defaults=queue_defaults(settings, name), replica_wait=replica_wait(settings))


def replica_wait(settings: Settings) -> ReplicaWait:
    return ReplicaWait(settings.redis_wait_replicas, settings.redis_wait_timeout_ms)


def start_maintenance(
    settings: Settings, client: redis.Redis, records: Records, queues: dict[str, JobQueue]
) -> MaintenanceRunner | None:
    """This process's share of the maintenance duties (none with MAINTENANCE_ENABLED off)."""
    if not settings.maintenance_enabled:
        return None
    runner = maintenance_runner(settings, client, records, queues,
                                functools.partial(open_queue, settings, client))
    runner.start()
    return runner


def build_ai_runtime(
    settings: Settings, redis_url: str, *, records: Records | None = None
) -> AiRuntime:
    """Providers, prices, tools, agents and memory, shared by every handler of a worker."""
    dataset = str(settings.agent_dataset) if settings.agent_dataset else None
    tools = default_tools(dataset)
    # Every running job may use it at once (metering, progress, memory): sized to the
    # concurrency, or jobs queue for a connection.
    client = connect(redis_url, max_connections=max(50, settings.queue_concurrency))
    memory = functools.partial(SessionStore, client, prefix=settings.queue_prefix,
                               max_messages=settings.max_history_messages)
    rules = LimitStore(client, settings)
    limits = ProviderLimits(rules, limit_counters(settings, client), Budgets(client, rules))
    return AiRuntime(
        providers=ProviderPool(settings),
        prices=PriceTable.load(file=settings.prices_file, inline=settings.prices_inline),
        tools=tools,
        agents=AgentRegistry.load(settings.agents_file, tools.names()),
        client=client,
        sessions=memory(kind="session"),
        conversations=memory(kind="conversation"),
        prefix=settings.queue_prefix,
        max_agent_steps=settings.agent_max_steps,
        records=records,
        provider_limits=limits,
    )


def limit_counters(settings: Settings, client: redis.Redis) -> WindowCounters:
    """The shared counters of every limit (under the queue prefix: one slot on a cluster)."""
    return WindowCounters(client, namespace=f"agentqueue:{settings.queue_prefix}:rl")


def load_agents(settings: Settings) -> AgentRegistry:
    """The agent definitions (AGENTQUEUE_AGENTS_FILE), their tools checked against ours."""
    if settings.agents_file is None:
        return AgentRegistry([])
    dataset = str(settings.agent_dataset) if settings.agent_dataset else None
    return AgentRegistry.load(settings.agents_file, default_tools(dataset).names())


def queue_names(settings: Settings, registry: JobRegistry | None = None) -> list[str]:
    """The built-in queues, then those of the served types (`served()` by default)."""
    names = [
        settings.agent_queue_name, settings.ai_jobs_queue_name, settings.webhooks_queue_name,
        settings.ai_tasks_queue_name, settings.agent_tasks_queue_name,
    ]
    types = served() if registry is None else registry
    return list(dict.fromkeys([*names, *types.queues(settings)]))


@dataclass
class WorkerGroup:
    """The workers of one process, one per queue, and the resources they share."""

    workers: list[WorkerRuntime]
    resources: WorkerResources
    metrics: MetricsRecorder
    # The queues notifications are submitted to (handlers.notify_middleware).
    notify_queues: dict[str, JobQueue] = dataclasses.field(default_factory=dict)

    @property
    def runtime(self) -> AiRuntime:
        return self.resources.runtime

    async def start(self) -> None:
        limits = self.runtime.provider_limits
        for worker in self.workers:
            if limits is not None:  # BullMQ's own limit, so Node workers honour it too
                try:
                    await limits.limits.apply_queue(worker.queue)
                except Exception as exc:  # Redis away: the worker starts and waits for it
                    log.warning("Could not apply the rate limit of queue %r: %s",
                                worker.queue, exc)
            await worker.start()

    async def stop(self, grace_s: float) -> None:
        # Every queue stops taking jobs at once; each lets its active jobs finish.
        await asyncio.gather(*(worker.stop(grace_s) for worker in self.workers))
        await self.metrics.close()
        for queue in self.notify_queues.values():
            await queue.close()
        await self.resources.aclose()
        await self.runtime.client.aclose()


def build_workers(
    settings: Settings,
    redis_url: str,
    queues: list[str] | None = None,
    *,
    records: Records | None = None,
    registry: JobRegistry | None = None,
    middleware: Sequence[Middleware] | None = None,
) -> WorkerGroup:
    """One worker per queue that has job types (all of them by default), each running every
    type of its queue from the registry (`served()` by default), sharing one set of resources.

    Each worker runs, in order: records (with `records`), usage metering, the engine's
    standard middleware (job logs, lifespan, cancellation, time limits), then `middleware`, the
    user's (by default those of the App installed in this process)."""
    types = served() if registry is None else registry
    by_queue: dict[str, list[JobDefinition]] = {}
    for definition in types:
        by_queue.setdefault(definition.queue_name(settings), []).append(definition)
    wanted = queues or list(by_queue)
    unknown = [q for q in wanted if q not in by_queue]
    if unknown:
        raise ValueError(f"unknown queue(s) {unknown}; known: {list(by_queue)}")
    runtime = build_ai_runtime(settings, redis_url, records=records)
    resources = WorkerResources(settings, runtime)
    context_class = resources.context_class()
    limits = runtime.provider_limits
    assert limits is not None
    # First: a job held back by a limit must not be marked active by the records.
    flow = FlowControl(limits.limits, limits.counters, records=records,
                       defer_ms=settings.tenant_defer_ms,
                       hold_ms=int(settings.job_timeout_s * 1000) + settings.lock_duration_ms)
    kept: list[Middleware] = [flow]
    if records is not None:
        kept.append(RecordsMiddleware(records))
    if tracing.enabled():
        kept.insert(0, Tracing())
    metering = UsageMetering(runtime.client, prefix=settings.queue_prefix)
    metrics = MetricsRecorder(runtime.client, prefix=settings.queue_prefix)
    runtime.metrics = flow.metrics = metrics
    users = list(installed_middleware() if middleware is None else middleware)
    # Jobs' `notify` announcements, queued as recorded jobs (so only with records); outside
    # the time limit and cancellation, so it sees how they end a run.
    notify: list[Middleware] = []
    notify_queues: dict[str, JobQueue] = {}
    if records is not None:
        notify_queues = open_queues(settings, runtime.client, types)
        notify.append(Notifications(JobSubmitter(notify_queues, records), settings, types))
    workers = []
    for name in wanted:
        options = worker_options(settings)
        worker = WorkerRuntime(name, redis_url, prefix=settings.queue_prefix, options=options,
                               middleware=[*kept, metering, JobMetrics(metrics), *notify,
                                           *standard_middleware(options), *users],
                               context_class=context_class)
        for definition in by_queue[name]:
            worker.register(definition.name, definition.run, timeout_s=definition.timeout)
        workers.append(worker)
    log.info("AI provider: %s (available: %s)", runtime.providers.default.name,
             ", ".join(runtime.providers.names))
    return WorkerGroup(workers, resources, metrics, notify_queues)


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.queue_concurrency,
        job_timeout_s=settings.job_timeout_s,
        lock_duration_ms=settings.lock_duration_ms,
        stalled_interval_ms=settings.stalled_interval_ms,
        max_stalled_count=settings.max_stalled_count,
        keep_completed=settings.keep_completed,
        keep_failed=settings.keep_failed,
        metrics_minutes=settings.metrics_minutes,
    )
