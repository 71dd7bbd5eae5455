"""The records middleware on its own, against a real Redis and a real SQL database: a job that
reached Redis without a record (a plain BullMQ producer) gets one, owned by nobody, exactly once
however many workers take it; a stalled re-run, progress, retries, failures and cancellations
show in the record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis
from bullmq import Job, Queue

from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import MiddlewareChain
from agentqueue.engine.queue import CANCELLED_REASON, JobQueue, QueueDefaults
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime, standard_middleware
from agentqueue.handlers.records_middleware import (
    ADOPTED_MESSAGE,
    STALLED_RERUN_MESSAGE,
    RecordsMiddleware,
)
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from tests.support.waiting import eventually

OWNER = JobOwner(user_id="alice", org_id="acme")


async def raw_job(redis_url: str, prefix: str) -> Job:
    queue = Queue("q", {"connection": redis_url, "prefix": prefix})
    try:
        added = await queue.add("chat", {"message": "hi"}, {"attempts": 3, "priority": 7})
        job = await Job.fromId(queue, str(added.id))
    finally:
        await queue.close()
    assert job is not None
    return job


async def test_two_workers_taking_a_raw_job_make_one_ownerless_record(
    redis_url: str, prefix: str, client: redis.Redis, records: Records
) -> None:
    job = await raw_job(redis_url, prefix)
    chain = MiddlewareChain([RecordsMiddleware(records)])

    async def noop(ctx: JobContext) -> None:
        return None

    await asyncio.gather(chain.run(JobContext(job, "q"), noop),
                         chain.run(JobContext(job, "q"), noop))

    record = await records.get("q", str(job.id))
    assert record is not None
    assert (record.status, record.type, record.data) == ("active", "chat", {"message": "hi"})
    assert (record.max_attempts, record.priority, record.attempts_made) == (3, 7, 1)
    assert (record.user_id, record.org_id) == ("", None)
    history = await records.history("q", str(job.id))
    assert [(e.status, e.attempt, e.message) for e in history] == [
        ("active", 1, ADOPTED_MESSAGE)]

    job.attemptsMade = 1  # its retry: the same record follows it
    ctx = JobContext(job, "q", stalls=1)
    await chain.run(ctx, noop)
    job.attemptsMade = 2  # as BullMQ counts it once the run is over
    ctx.state["usage"] = (10, 5, 0.25)  # what the usage metering middleware leaves
    await chain.completed(ctx, {"response": "hello"})
    assert [(e.status, e.attempt, e.message) for e in await records.history("q", str(job.id))
            ] == [("active", 1, ADOPTED_MESSAGE), ("active", 2, STALLED_RERUN_MESSAGE),
                  ("completed", 2, None)]
    record = await records.get("q", str(job.id))
    assert record is not None and record.result == {"response": "hello"}
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (10, 5, 0.25)
    assert (await records.list_jobs())[1] == 1


@pytest.fixture
async def worker(
    redis_url: str, prefix: str, records: Records
) -> AsyncIterator[WorkerRuntime]:
    options = WorkerOptions(concurrency=2, job_timeout_s=10)
    runtime = WorkerRuntime("q", redis_url, prefix=prefix, options=options,
                            middleware=[RecordsMiddleware(records), *standard_middleware(options)])
    yield runtime
    await runtime.stop(grace_s=0)


async def status_of(records: Records, job_id: str, *wanted: str) -> Any:
    async def probe() -> Any:
        record = await records.get("q", job_id)
        return record if record is not None and record.status in wanted else None

    return await eventually(probe, what=f"job {job_id}'s record to be {wanted}")


async def submitted(records: Records, queue: JobQueue, name: str, **opts: Any) -> str:
    """A job recorded then queued, as the jobs service does it."""
    job_id = await queue.add(name, {}, **opts)
    await records.create_job(queue="q", job_id=job_id, type=name, data={}, owner=OWNER,
                             max_attempts=int(opts.get("attempts") or 1), priority=0,
                             status="queued")
    return job_id


async def test_a_retried_then_failed_job_is_queued_again_then_failed(
    worker: WorkerRuntime, records: Records, client: redis.Redis, prefix: str
) -> None:
    gate = asyncio.Event()

    async def broken(ctx: JobContext) -> None:
        await gate.wait()
        raise RuntimeError(f"upstream down (attempt {ctx.attempt})")

    worker.register("broken", broken)
    queue = JobQueue("q", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))
    job_id = await submitted(records, queue, "broken", attempts=2)
    gate.set()
    await worker.start()
    record = await status_of(records, job_id, "failed")
    assert record.error == "upstream down (attempt 2)"
    statuses = [(e.status, e.message) for e in await records.history("q", job_id)]
    assert ("queued", "attempt failed, will retry: upstream down (attempt 1)") in statuses
    assert statuses[-1] == ("failed", "upstream down (attempt 2)")


async def test_progress_reaches_the_record_and_a_cancelled_job_is_cancelled(
    worker: WorkerRuntime, records: Records, client: redis.Redis, prefix: str
) -> None:
    reported = asyncio.Event()

    async def long(ctx: JobContext) -> None:
        await ctx.progress(42)
        reported.set()
        await asyncio.Event().wait()

    worker.register("long", long)
    queue = JobQueue("q", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))
    job_id = await submitted(records, queue, "long")
    await worker.start()
    await asyncio.wait_for(reported.wait(), 20)
    await status_of(records, job_id, "active")

    async def progress_recorded() -> bool:
        record = await records.get("q", job_id)
        return record is not None and record.progress == 42

    # Written behind (the live value is in Redis): the record follows a moment later.
    await eventually(progress_recorded, what="the progress in the record")
    await queue.cancel(job_id)
    record = await status_of(records, job_id, "cancelled", "failed")
    assert (record.status, record.error) == ("cancelled", CANCELLED_REASON)
