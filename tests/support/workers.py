"""Workers for middleware tests: a queue, workers started with chosen middleware (stopped after
the test), and a wait for a job to finish. Import the fixtures where they are used."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import redis.asyncio as redis

import agentqueue
from agentqueue.engine.context import Handler
from agentqueue.engine.jobs import JobView
from agentqueue.engine.middleware import Middleware
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime
from agentqueue.services import build_workers
from tests.support.waiting import eventually

MW_OPTIONS = WorkerOptions(concurrency=4, job_timeout_s=10, lock_duration_ms=2000,
                           stalled_interval_ms=1000, reconnect_delay_ms=100)

StartWorker = Callable[..., Awaitable[WorkerRuntime]]


@pytest.fixture
async def mw_queue(client: redis.Redis, prefix: str) -> JobQueue:
    return JobQueue("mw", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))


@pytest.fixture
async def start_worker(redis_url: str, prefix: str) -> AsyncIterator[StartWorker]:
    """`await start_worker({"name": handler}, [middleware…], timeouts={"name": s})`: a running
    worker on queue "mw"."""
    started: list[WorkerRuntime] = []

    async def start(handlers: dict[str, Handler], middleware: Sequence[Middleware] | None,
                    *, timeouts: dict[str, float] | None = None,
                    options: WorkerOptions = MW_OPTIONS) -> WorkerRuntime:
        worker = WorkerRuntime("mw", redis_url, prefix=prefix, options=options,
                               middleware=middleware)
        for name, handler in handlers.items():
            worker.register(name, handler, timeout_s=(timeouts or {}).get(name))
        started.append(worker)
        await worker.start()
        return worker

    yield start
    for worker in started:
        await worker.stop(grace_s=0)


@contextlib.asynccontextmanager
async def worker_maker(
    redis_url: str, prefix: str, queue: str, defaults: WorkerOptions
) -> AsyncIterator[Callable[..., WorkerRuntime]]:
    """`make({"name": handler}, options=defaults)`: a worker on `queue` with the engine's
    standard middleware, not started yet; every one made is stopped when the block ends."""
    made: list[WorkerRuntime] = []

    def make(handlers: dict[str, Any], options: WorkerOptions = defaults) -> WorkerRuntime:
        worker = WorkerRuntime(queue, redis_url, prefix=prefix, options=options)
        for name, handler in handlers.items():
            worker.register(name, handler)
        made.append(worker)
        return worker

    try:
        yield make
    finally:
        for worker in made:
            await worker.stop(grace_s=0)


async def finished(queue: JobQueue, job_id: str) -> JobView:
    async def probe() -> Any:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(probe, what=f"job {job_id} to finish")


@contextlib.asynccontextmanager
async def app_worker(app: agentqueue.App, queue: str = "jobs") -> AsyncIterator[None]:
    """A worker on `queue` running the App's own types, built as `agentqueue worker module:app`
    builds it (records, metering, the standard middleware, then the App's), with 4 slots."""
    backend = await app._backend()
    settings = app.settings.model_copy(update={"queue_concurrency": 4})
    assert settings.external_redis_url is not None
    group = build_workers(settings, settings.external_redis_url, [queue],
                          records=backend.records, registry=app.types(builtin=False),
                          middleware=app.middleware)
    await group.start()
    try:
        yield
    finally:
        await group.stop(5)
