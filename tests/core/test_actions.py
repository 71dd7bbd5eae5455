"""A manual retry whose re-queue fails: the record says what Redis did."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError

from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.core.actions import cancel_job, retry_job
from agentqueue.core.errors import JobConflict
from agentqueue.core.lookup import FoundJob
from agentqueue.core.submission import JobSubmitter, NotQueued
from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import PermanentJobError
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import Services
from tests.support.workers import MW_OPTIONS, finished, worker_maker


class FaultyQueue(JobQueue):
    dropped_after_add = False

    async def add(self, name: str, data: Any, **options: Any) -> str:
        if not self.dropped_after_add:  # refused before anything was sent
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await super().add(name, data, **options)
        raise ConnectionError("Connection closed by server.")


@pytest.fixture
def services(client: redis.Redis, redis_url: str, prefix: str, records: Records) -> Services:
    queues: dict[str, JobQueue] = {"q": FaultyQueue("q", client, prefix=prefix)}
    return Services(Settings(), redis_url, client, queues, records, JobSubmitter(queues, records))


async def failed_job(services: Services) -> FoundJob:
    await services.records.create_job(queue="q", job_id="7", type="chat", data={},
                                      owner=JobOwner(user_id="u"))
    await services.records.mark("q", "7", "active", attempt=1)
    await services.records.mark("q", "7", "failed", attempt=1, error="boom")
    return FoundJob(record=await services.records.get("q", "7"), live=None)


async def test_a_retry_redis_refused_leaves_the_job_failed(services: Services) -> None:
    with pytest.raises(NotQueued):
        await retry_job(services, "q", "7", await failed_job(services))
    record = await services.records.get("q", "7")
    assert record is not None and (record.status, record.error) == ("failed", "boom")
    assert record.attempts_made == 1


async def test_a_retry_that_may_have_reached_redis_stands(services: Services) -> None:
    queue = services.queues["q"]
    assert isinstance(queue, FaultyQueue)
    queue.dropped_after_add = True
    await retry_job(services, "q", "7", await failed_job(services))
    record = await services.records.get("q", "7")
    assert record is not None and (record.status, record.attempts_made) == ("queued", 0)
    assert await queue.get("7") is not None


async def test_a_cancelled_job_retried_keeps_its_priority(
    client: redis.Redis, redis_url: str, prefix: str, records: Records
) -> None:
    queue = JobQueue("q", client, prefix=prefix)
    queues = {"q": queue}
    services = Services(Settings(), redis_url, client, queues, records,
                        JobSubmitter(queues, records))
    await queue.pause()  # so it is still waiting when cancelled
    high = priorities.from_level("high")
    job = await services.submitter.submit(queue="q", name="chat", data={},
                                          owner=JobOwner(user_id="u"), priority=high)
    await cancel_job(services, "q", job.job_id,
                     FoundJob(record=job, live=await queue.get(job.job_id)))
    cancelled = await records.get("q", job.job_id)
    assert cancelled is not None and cancelled.status == "cancelled"
    # Cancelled already: a second cancel is refused (409 over HTTP), not reported as done.
    with pytest.raises(JobConflict, match="has already finished"):
        await cancel_job(services, "q", job.job_id,
                         FoundJob(record=cancelled, live=await queue.get(job.job_id)))

    await retry_job(services, "q", job.job_id,
                    FoundJob(record=cancelled, live=await queue.get(job.job_id)))
    again = await queue.get(job.job_id)
    assert again is not None and again.state == "paused" and again.priority == high


async def test_a_finished_job_is_neither_cancelled_nor_retried(services: Services) -> None:
    await services.records.create_job(queue="q", job_id="8", type="chat", data={},
                                      owner=JobOwner(user_id="u"))
    await services.records.mark("q", "8", "completed", attempt=1)
    done = FoundJob(record=await services.records.get("q", "8"), live=None)
    with pytest.raises(JobConflict, match="^Job 8 has already finished$"):
        await cancel_job(services, "q", "8", done)
    with pytest.raises(JobConflict, match="^Job 8 cannot be retried: job is completed; only "
                                          "failed jobs can be retried$"):
        await retry_job(services, "q", "8", done)
    record = await services.records.get("q", "8")
    assert record is not None and record.status == "completed"


async def test_a_retry_racing_the_workers_failure_write_still_retries(
    client: redis.Redis, redis_url: str, prefix: str, records: Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Redis says failed while the record still says active: the worker's failure write lands
    # between the retry reading the record and claiming it. That write only catches the record
    # up with Redis; it is no competing change, and the retry must not answer 409 for it.
    queue = JobQueue("q", client, prefix=prefix)
    queues = {"q": queue}
    services = Services(Settings(), redis_url, client, queues, records,
                        JobSubmitter(queues, records))
    job = await services.submitter.submit(queue="q", name="chat", data={},
                                          owner=JobOwner(user_id="u"))
    async with worker_maker(redis_url, prefix, "q", MW_OPTIONS) as make:
        await make({"chat": refuse}).start()
        assert (await finished(queue, job.job_id)).state == "failed"
    await records.mark("q", job.job_id, "active", attempt=1)  # the record behind Redis
    stale = await records.get("q", job.job_id)
    claim = records.claim

    async def failure_lands_first(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(records, "claim", claim)
        await records.mark("q", job.job_id, "failed", attempt=1, error="no")
        return await claim(*args, **kwargs)

    monkeypatch.setattr(records, "claim", failure_lands_first)
    await retry_job(services, "q", job.job_id,
                    FoundJob(record=stale, live=await queue.get(job.job_id)))
    again = await queue.get(job.job_id)
    assert again is not None and again.state in ("waiting", "prioritized")
    record = await records.get("q", job.job_id)
    assert record is not None and (record.status, record.attempts_made) == ("queued", 0)


async def refuse(ctx: JobContext) -> None:
    raise PermanentJobError("no")
