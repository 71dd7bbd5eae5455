"""Accepting jobs: record first, ids shared with BullMQ, no collision when Redis forgets, and an
answer that matches what Redis did when the add fails half-way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from agentqueue.core import priority as priorities
from agentqueue.core.submission import JobSubmitter, NotQueued
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import JobContext, WorkerOptions, WorkerRuntime
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.maintenance.repair import RepairService
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from tests.support.waiting import eventually

OWNER = JobOwner(user_id="u1", org_id="o1")


@pytest.fixture
async def submitter(client: redis.Redis, prefix: str, records: Records) -> JobSubmitter:
    return JobSubmitter({"q": JobQueue("q", client, prefix=prefix)}, records)


async def test_ids_are_sequential_and_shared_by_record_and_redis(submitter) -> None:
    first = await submitter.submit(queue="q", name="chat", data={"n": 1}, owner=OWNER)
    second = await submitter.submit(queue="q", name="chat", data={"n": 2}, owner=OWNER)
    assert (first.job_id, second.job_id) == ("1", "2")  # no gaps from BullMQ's own count
    view = await submitter.queue("q").get("2")
    assert view is not None and view.data == {"n": 2}
    record = await submitter.records.get("q", "2")
    assert record is not None and record.status == "queued" and record.user_id == "u1"

    async def lease_ended() -> bool:  # with the next group commit, the caller not waiting
        ended = await submitter.records.get("q", "2")
        return ended is not None and ended.submitting_until is None

    await eventually(lease_ended, what="the submission's lease to end")
    history = await submitter.records.history("q", "2")
    assert [e.status for e in history] == ["pending", "queued"]
    # A plain BullMQ add in between takes the next id, never one of ours.
    assert await submitter.queue("q").add("chat", {}) == "3"


async def test_a_forgetful_redis_does_not_reuse_recorded_ids(
    submitter, client: redis.Redis, prefix: str
) -> None:
    await submitter.submit(queue="q", name="chat", data={}, owner=OWNER)
    await submitter.submit(queue="q", name="chat", data={}, owner=OWNER)
    await client.delete(f"{prefix}:q:id")  # a new, or flushed, Redis
    third = await submitter.submit(queue="q", name="chat", data={"n": 3}, owner=OWNER)
    assert third.job_id == "3"
    assert (await submitter.queue("q").get("3")).data == {"n": 3}  # type: ignore[union-attr]


# -- an add that fails half-way -------------------------------------------------------------


class FaultyQueue(JobQueue):
    """A queue whose add fails the way a test says: `fault(queue)` runs in place of the add."""

    fault: Callable[[JobQueue, str, Any, dict[str, Any]], Any] | None = None

    async def add(self, name: str, data: Any, **options: Any) -> str:
        if self.fault is None:
            return await super().add(name, data, **options)
        return await self.fault(self, name, data, options)  # type: ignore[no-any-return]


@pytest.fixture
def faulty(client: redis.Redis, prefix: str, records: Records) -> tuple[FaultyQueue, JobSubmitter]:
    queue = FaultyQueue("q", client, prefix=prefix)
    return queue, JobSubmitter({"q": queue}, records, lease_s=0.2)


async def test_a_job_redis_took_before_the_connection_dropped_is_accepted(faulty) -> None:
    queue, submitter = faulty

    async def added_then_dropped(q: JobQueue, name: str, data: Any, options: dict) -> str:
        await JobQueue.add(q, name, data, **options)
        raise ConnectionError("Connection closed by server.")

    queue.fault = added_then_dropped
    accepted = await submitter.submit(queue="q", name="chat", data={"n": 1}, owner=OWNER)
    assert accepted.status == "queued"
    record = await submitter.records.get("q", accepted.job_id)
    assert record is not None and record.status == "queued" and record.error is None
    view = await queue.get(accepted.job_id)
    assert view is not None and view.data == {"n": 1}


async def test_a_job_that_may_have_reached_redis_is_accepted_and_repair_queues_it(
    faulty, records: Records
) -> None:
    queue, submitter = faulty

    async def sent_then_timed_out(q: JobQueue, name: str, data: Any, options: dict) -> str:
        await q.client.ping()  # a connection was handed out: the add may have been sent
        raise TimeoutError("Timeout reading from 127.0.0.1:6379")

    queue.fault = sent_then_timed_out
    accepted = await submitter.submit(queue="q", name="chat", data={"n": 2}, owner=OWNER)
    assert accepted.status == "queued"
    assert await queue.get(accepted.job_id) is None  # it did not, in fact

    queue.fault = None
    repair = RepairService(records, {"q": queue}, settle_s=0)

    async def queued_by_repair() -> bool:  # once the submission's lease has run out
        return (await repair.run_once()).requeued == 1

    await eventually(queued_by_repair, what="the repair service to queue the job")
    view = await queue.get(accepted.job_id)
    assert view is not None and view.data == {"n": 2}


@pytest.mark.parametrize("refusal", ["connect", "answer"])
async def test_a_job_redis_certainly_did_not_take_answers_not_queued_and_leaves_no_record(
    faulty, refusal: str
) -> None:
    queue, submitter = faulty

    async def refused(q: JobQueue, name: str, data: Any, options: dict) -> str:
        if refusal == "connect":  # before any connection was handed out
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await q.client.ping()
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    queue.fault = refused
    with pytest.raises(NotQueued):
        await submitter.submit(queue="q", name="chat", data={}, owner=OWNER)
    assert await submitter.records.get("q", "1") is None
    assert (await submitter.records.list_jobs())[1] == 0


# -- the repair service never races a live submission ---------------------------------------


class PausedQueue(JobQueue):
    """A queue whose add waits for the test: a submission stopped between record and add."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def add(self, name: str, data: Any, **options: Any) -> str:
        if not self.go.is_set():
            self.reached.set()
            await self.go.wait()
        return await super().add(name, data, **options)


async def test_repair_leaves_a_slow_submission_alone_and_the_job_runs_once(
    client: redis.Redis, redis_url: str, prefix: str, records: Records
) -> None:
    # Redis keeps no finished job, so an add under a finished job's id makes a new job.
    defaults = QueueDefaults(keep_completed=0)
    paused = PausedQueue("q", client, prefix=prefix, defaults=defaults)
    submitter = JobSubmitter({"q": paused}, records)
    repair = RepairService(records, {"q": JobQueue("q", client, prefix=prefix,
                                                   defaults=defaults)}, settle_s=0)
    runs: list[str] = []

    async def count(ctx: JobContext) -> str:
        runs.append(ctx.id)
        return "done"

    worker = WorkerRuntime("q", redis_url, prefix=prefix, middleware=[RecordsMiddleware(records)],
                           options=WorkerOptions(concurrency=2, job_timeout_s=5))
    worker.register("chat", count)
    await worker.start()
    try:
        submission = asyncio.create_task(
            submitter.submit(queue="q", name="chat", data={}, owner=OWNER))
        await asyncio.wait_for(paused.reached.wait(), 10)
        # The record exists, older than REPAIR_SETTLE_SECONDS (0), and the job is not in Redis.
        assert (await repair.run_once()).requeued == 0

        async def idle() -> bool:  # whatever the repair service queued has run
            counts = await paused.counts()
            record = await records.get("q", "1")
            return (counts["waiting"] + counts["active"] + counts["delayed"] == 0
                    and (not runs or (record is not None and record.status == "completed")))

        await eventually(idle, what="the worker to be idle")
        paused.go.set()
        job = await submission

        async def settled() -> bool:
            record = await records.get("q", job.job_id)
            counts = await paused.counts()
            return (record is not None and record.status == "completed"
                    and counts["waiting"] + counts["active"] + counts["delayed"] == 0)

        await eventually(settled, what="the job to run and the queue to drain")
    finally:
        await worker.stop(grace_s=0)
    assert runs == [job.job_id]
    history = [(e.status, e.message) for e in await records.history("q", job.job_id)]
    assert history[-1][0] == "completed"
    assert all("again" not in (message or "") for _, message in history)


async def test_a_job_in_redis_is_accepted_even_if_ending_the_lease_fails(submitter) -> None:
    """Once the add went through, a records error may not turn the answer into a failure (the
    client would submit again and the job would run twice); the lease simply runs out."""

    async def broken_lease_ends(_session: Any, leases: list[Any]) -> None:
        if leases:
            raise ConnectionError("records database went away")

    submitter.records._end_leases = broken_lease_ends  # type: ignore[method-assign]
    accepted = await submitter.submit(queue="q", name="chat", data={"n": 1}, owner=OWNER)
    assert accepted.status == "queued"
    assert await submitter.queue("q").get(accepted.job_id) is not None
    record = await submitter.records.get("q", accepted.job_id)
    assert record is not None and record.status == "queued"
    assert record.submitting_until is not None  # left to run out


# -- priority ---------------------------------------------------------------------------------


async def test_a_job_without_a_priority_does_not_overtake_a_prioritized_one(
    submitter, client: redis.Redis, redis_url: str, prefix: str, records: Records
) -> None:
    # BullMQ serves its plain wait list before its prioritized set: a job given no priority
    # would run before a seed 000 `metadata.priority: "high"` or a seed 001 priority 100 job.
    queue = submitter.queue("q")
    await queue.pause()
    plain = await submitter.submit(queue="q", name="chat", data={}, owner=OWNER)
    high = await submitter.submit(queue="q", name="chat", data={}, owner=OWNER,
                                  priority=priorities.from_level("high"))
    urgent = await submitter.submit(queue="q", name="chat", data={}, owner=OWNER,
                                    priority=priorities.from_seed001(100))
    low = await submitter.submit(queue="q", name="chat", data={}, owner=OWNER,
                                 priority=priorities.from_seed002(0))
    runs: list[str] = []

    async def note(ctx: JobContext) -> str:
        runs.append(ctx.id)
        return "done"

    async def all_ran() -> bool:
        return len(runs) == 4

    worker = WorkerRuntime("q", redis_url, prefix=prefix, options=WorkerOptions(concurrency=1))
    worker.register("chat", note)
    await worker.start()
    try:
        await queue.resume()
        await eventually(all_ran, what="all four jobs to run")
    finally:
        await worker.stop(grace_s=0)
    assert runs == [high.job_id, urgent.job_id, plain.job_id, low.job_id]
    record = await records.get("q", plain.job_id)
    assert record is not None and record.priority == priorities.NORMAL


# -- custom ids and deduplication -------------------------------------------------------------


async def test_a_custom_id_is_recorded_first_and_named_once(submitter) -> None:
    first = await submitter.accept(queue="q", name="chat", data={"n": 1}, owner=OWNER,
                                   job_id="order-1")
    again = await submitter.accept(queue="q", name="chat", data={"n": 2}, owner=OWNER,
                                   job_id="order-1")
    assert (first.job_id, first.existing, again.job_id, again.existing) == (
        "order-1", False, "order-1", True)
    assert again.record is not None and again.record.data == {"n": 1}
    history = await submitter.records.history("q", "order-1")
    assert [e.status for e in history] == ["pending", "queued"]
    view = await submitter.queue("q").get("order-1")
    assert view is not None and view.data == {"n": 1}
    # The counter's ids go on without a gap.
    numbered = await submitter.submit(queue="q", name="chat", data={}, owner=OWNER)
    assert numbered.job_id == "1"
    with pytest.raises(ValueError, match="cannot be a job id"):
        await submitter.accept(queue="q", name="chat", data={}, owner=OWNER, job_id="7")


class BlindQueue(JobQueue):
    """A queue that does not see deduplication ids before the add: two submissions racing."""

    async def deduplicated(self, dedup_id: str) -> str | None:
        return None


async def test_a_submission_that_loses_a_deduplication_race_leaves_no_record(
    client: redis.Redis, prefix: str, records: Records
) -> None:
    submitter = JobSubmitter({"q": BlindQueue("q", client, prefix=prefix)}, records)
    key = {"id": "nightly"}
    first = await submitter.accept(queue="q", name="chat", data={"n": 1}, owner=OWNER,
                                   deduplication=key)
    second = await submitter.accept(queue="q", name="chat", data={"n": 2}, owner=OWNER,
                                    deduplication=key)
    assert (second.job_id, second.existing) == (first.job_id, True)
    assert second.record is not None and second.record.data == {"n": 1}
    assert (await records.list_jobs(queues=["q"]))[1] == 1
    assert sum((await submitter.queue("q").counts()).values()) == 1
