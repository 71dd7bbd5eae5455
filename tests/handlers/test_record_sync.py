"""The worker's record listener: a job that reached Redis without a record (a plain BullMQ
producer) gets one, owned by nobody, exactly once however many workers take it."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis
from bullmq import Job, Queue

from agentqueue.engine.worker import JobContext
from agentqueue.handlers.record_sync import ADOPTED_MESSAGE, RecordSync
from agentqueue.records.store import Records


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
    sync = RecordSync(records, client, prefix=prefix)

    await asyncio.gather(sync.on_active(JobContext(job, "q")), sync.on_active(JobContext(job, "q")))

    record = await records.get("q", str(job.id))
    assert record is not None
    assert (record.status, record.type, record.data) == ("active", "chat", {"message": "hi"})
    assert (record.max_attempts, record.priority, record.attempts_made) == (3, 7, 1)
    assert (record.user_id, record.org_id) == ("", None)
    history = await records.history("q", str(job.id))
    assert [(e.status, e.attempt, e.message) for e in history] == [
        ("active", 1, ADOPTED_MESSAGE)]

    job.attemptsMade = 1  # its retry: the same record follows it
    await sync.on_active(JobContext(job, "q"))
    job.attemptsMade = 2  # as BullMQ counts it once the run is over
    await sync.on_completed("q", job, {"response": "hello"})
    assert [(e.status, e.attempt) for e in await records.history("q", str(job.id))] == [
        ("active", 1), ("active", 2), ("completed", 2)]
    assert (await records.list_jobs())[1] == 1

