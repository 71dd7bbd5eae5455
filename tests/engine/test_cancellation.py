"""The cancellation middleware against a real Redis: a cancel request stops an active job, which
fails without retry; a request heard before the job reached the worker stops it at once."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from agentqueue.engine.cancellation import Cancellation
from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import (
    CANCELLED_REASON,
    CancelOutcome,
    JobQueue,
    cancel_requests_key,
)
from agentqueue.engine.worker import WorkerRuntime
from tests.support.workers import StartWorker, finished


async def test_cancelling_an_active_job_fails_it_without_retry(
    mw_queue: JobQueue, start_worker: StartWorker, client: redis.Redis, prefix: str
) -> None:
    running = asyncio.Event()
    stopped = asyncio.Event()

    async def long(ctx: JobContext) -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    await start_worker({"long": long}, [Cancellation()])
    job_id = await mw_queue.add("long", {}, attempts=3)
    await asyncio.wait_for(running.wait(), 20)
    assert await mw_queue.cancel(job_id) is CancelOutcome.REQUESTED
    assert stopped.is_set()
    view = await finished(mw_queue, job_id)
    assert (view.state, view.failed_reason, view.attempts_made) == (
        "failed", CANCELLED_REASON, 1)
    # The request is done with: a retry of the job is not cancelled again.
    assert not await client.sismember(cancel_requests_key(prefix, "mw"), job_id)


async def test_a_request_made_before_the_worker_took_the_job_stops_it_at_once(
    mw_queue: JobQueue, start_worker: StartWorker, client: redis.Redis, prefix: str
) -> None:
    ran: list[str] = []

    async def work(ctx: JobContext) -> None:
        ran.append(ctx.id)

    job_id = await mw_queue.add("work", {})
    # As `JobQueue.cancel` leaves it when the job was being picked up: the request is in the
    # set (no worker was listening yet).
    await client.sadd(cancel_requests_key(prefix, "mw"), job_id)
    await start_worker({"work": work}, [Cancellation()])
    view = await finished(mw_queue, job_id)
    assert (view.state, view.failed_reason) == ("failed", CANCELLED_REASON)
    assert ran == []


async def test_one_cancellation_serves_one_worker(
    start_worker: StartWorker, redis_url: str, prefix: str
) -> None:
    shared = Cancellation()
    await start_worker({}, [shared])
    other = WorkerRuntime("other", redis_url, prefix=prefix, middleware=[shared])
    try:
        await other.start()
    except RuntimeError as exc:
        assert "one worker" in str(exc)
    else:
        await other.stop(0)
        raise AssertionError("a shared Cancellation was accepted")
