"""The repair service writes only compare-and-set: it never reopens a record someone finished."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis

from agentqueue.core import priority as priorities
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.jobs import JobView
from agentqueue.engine.queue import JobQueue
from agentqueue.maintenance.repair import RepairService
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner


class LookupPausedQueue(JobQueue):
    """Repair's view of Redis, stopped right after it looked a job up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.looked = asyncio.Event()
        self.go = asyncio.Event()

    async def get(self, job_id: str) -> JobView | None:
        view = await super().get(job_id)
        self.looked.set()
        await self.go.wait()
        return view


async def test_repair_does_not_reopen_a_record_finished_while_it_looked(
    client: redis.Redis, prefix: str, records: Records
) -> None:
    queue = JobQueue("q", client, prefix=prefix)
    job = await JobSubmitter({"q": queue}, records).submit(
        queue="q", name="chat", data={}, owner=JobOwner(user_id="u"))
    assert await queue.remove(job.job_id)  # not in Redis when repair looks…
    paused = LookupPausedQueue("q", client, prefix=prefix)
    repairing = asyncio.create_task(RepairService(records, {"q": paused}, settle_s=0).run_once())
    await asyncio.wait_for(paused.looked.wait(), 10)
    # …and meanwhile a worker ran it and Redis dropped it (retention), the record says so.
    await records.mark("q", job.job_id, "active", attempt=1)
    await records.mark("q", job.job_id, "completed", attempt=1, result="done")
    paused.go.set()
    report = await repairing

    assert report.requeued == 0
    record = await records.get("q", job.job_id)
    assert record is not None and (record.status, record.result) == ("completed", "done")
    assert await queue.get(job.job_id) is None  # not queued to run a second time


async def test_a_job_queued_again_by_repair_keeps_its_priority(
    client: redis.Redis, prefix: str, records: Records
) -> None:
    queue = JobQueue("q", client, prefix=prefix)
    submitter = JobSubmitter({"q": queue}, records)
    plain = await submitter.submit(queue="q", name="chat", data={}, owner=JobOwner(user_id="u"))
    low = await submitter.submit(queue="q", name="chat", data={}, owner=JobOwner(user_id="u"),
                                 priority=priorities.from_level("low"))
    for job in (plain, low):
        assert await queue.remove(job.job_id)  # lost by Redis
    assert (await RepairService(records, {"q": queue}, settle_s=0).run_once()).requeued == 2
    # Given none, it still gets the normal one: no priority would overtake every other job.
    assert (await queue.get(plain.job_id)).priority == priorities.NORMAL  # type: ignore[union-attr]
    assert (await queue.get(low.job_id)).priority == priorities.from_level("low")  # type: ignore[union-attr]


async def test_repair_mends_a_queue_this_process_was_not_told_of(
    client: redis.Redis, prefix: str, records: Records
) -> None:
    # A job type of an App the process holding the duty does not load: its queue is opened.
    queue = JobQueue("theirs", client, prefix=prefix)
    job = await JobSubmitter({"theirs": queue}, records).submit(
        queue="theirs", name="their-type", data={}, owner=JobOwner(user_id="u"))
    assert await queue.remove(job.job_id)  # lost by Redis
    repair = RepairService(records, {}, settle_s=0,
                           open_queue=lambda name: JobQueue(name, client, prefix=prefix))
    assert (await repair.run_once()).requeued == 1
    assert await queue.get(job.job_id) is not None


async def test_a_job_parked_for_approval_that_redis_lost_is_failed_not_left_waiting(
    client: redis.Redis, prefix: str, records: Records
) -> None:
    queue = JobQueue("q", client, prefix=prefix)
    submitter = JobSubmitter({"q": queue}, records)
    lost = await submitter.submit(queue="q", name="chat", data={}, owner=JobOwner(user_id="u"))
    kept = await submitter.submit(queue="q", name="chat", data={}, owner=JobOwner(user_id="u"))
    for job in (lost, kept):
        await records.mark("q", job.job_id, "active", attempt=1)
        await records.mark("q", job.job_id, "awaiting", attempt=1)
    assert await queue.remove(lost.job_id)
    report = await RepairService(records, {"q": queue}, settle_s=0).run_once()
    assert (report.requeued, report.updated) == (0, 1)
    gone = await records.get("q", lost.job_id)
    assert gone is not None and gone.status == "failed"
    still = await records.get("q", kept.job_id)
    assert still is not None and still.status == "awaiting"
