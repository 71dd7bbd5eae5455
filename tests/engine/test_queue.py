"""JobQueue against a real Redis: adding, reading, counting, pausing, cleaning, cancelling."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from agentqueue.engine.jobs import is_job_id
from agentqueue.engine.queue import (
    CANCELLED_REASON,
    CancelOutcome,
    InvalidJobId,
    JobNotRetryable,
    JobQueue,
)


@pytest.fixture
async def queue(client: redis.Redis, prefix: str) -> JobQueue:
    return JobQueue("q", client, prefix=prefix)


async def test_added_job_reads_back_waiting_with_seed_defaults(queue: JobQueue) -> None:
    job_id = await queue.add("chat", {"message": "hi"})
    view = await queue.get(job_id)
    assert view is not None
    assert (view.name, view.state, view.data) == ("chat", "waiting", {"message": "hi"})
    assert view.max_attempts == 3
    assert view.created_at_ms and view.finished_at_ms is None


async def test_ids_count_up_like_bullmq(queue: JobQueue) -> None:
    first = await queue.add("chat", {})
    second = await queue.add("chat", {})
    assert int(second) == int(first) + 1


async def test_unknown_job_is_none(queue: JobQueue) -> None:
    assert await queue.get("999999") is None


async def test_counts_fold_prioritized_into_waiting(queue: JobQueue) -> None:
    await queue.add("chat", {})
    await queue.add("chat", {}, priority=1)
    await queue.add("chat", {}, delay=60_000)
    counts = await queue.counts()
    assert counts["waiting"] == 2 and counts["delayed"] == 1 and counts["active"] == 0


async def test_pause_moves_waiting_jobs_to_paused_and_resume_back(queue: JobQueue) -> None:
    job_id = await queue.add("chat", {})
    await queue.pause()
    assert await queue.is_paused()
    assert (await queue.get(job_id)).state == "paused"  # type: ignore[union-attr]
    assert (await queue.counts())["paused"] == 1
    await queue.resume()
    assert (await queue.get(job_id)).state == "waiting"  # type: ignore[union-attr]


async def test_list_filters_by_state_newest_first(queue: JobQueue) -> None:
    ids = [await queue.add("chat", {"n": n}) for n in range(3)]
    delayed = await queue.add("chat", {}, delay=60_000)
    listed = await queue.list_jobs(["waiting"], limit=2)
    assert [v.id for v in listed] == [ids[2], ids[1]]
    assert [v.id for v in await queue.list_jobs(["delayed"], limit=10)] == [delayed]


async def test_cancel_pending_job_leaves_a_failed_tombstone(queue: JobQueue) -> None:
    job_id = await queue.add("chat", {"message": "x"})
    assert await queue.cancel(job_id) is CancelOutcome.CANCELLED
    view = await queue.get(job_id)
    assert view is not None and view.state == "cancelled"
    assert view.failed_reason == CANCELLED_REASON and view.data == {"message": "x"}
    assert (await queue.counts())["waiting"] == 0
    assert job_id in [v.id for v in await queue.list_jobs(["failed", "cancelled"])]
    with pytest.raises(JobNotRetryable):
        await queue.retry(job_id)


async def test_cancel_unknown_job(queue: JobQueue) -> None:
    assert await queue.cancel("424242") is CancelOutcome.NOT_FOUND


async def test_retry_refuses_a_job_that_has_not_failed(queue: JobQueue) -> None:
    job_id = await queue.add("chat", {})
    with pytest.raises(JobNotRetryable, match="waiting"):
        await queue.retry(job_id)
    with pytest.raises(KeyError):
        await queue.retry("31337")


async def test_clean_keeps_young_jobs(queue: JobQueue) -> None:
    await queue.add("chat", {})
    assert await queue.clean(older_than_ms=3_600_000) == 0
    assert (await queue.counts())["waiting"] == 1


# --- job ids: a queue's own keys are never read or written as jobs ---------------------------


@pytest.mark.parametrize("job_id", ["1", "42", "01", "my-report", "repeat:3f2a:1700000000000",
                                    "user 7 – nightly"])
def test_job_ids_bullmq_issues_or_node_accepts_are_valid(job_id: str) -> None:
    assert is_job_id(job_id)


@pytest.mark.parametrize("job_id", ["id", "wait", "events", "meta", "paused", "1:logs",
                                    "1:lock", "metrics:completed:data", "de:x", "", "a\x00b",
                                    "a:b:c:d", "x" * 513])
def test_queue_keys_and_malformed_ids_are_not_job_ids(job_id: str) -> None:
    assert not is_job_id(job_id)


@pytest.mark.parametrize("key", ["id", "meta", "wait", "events", "1:logs"])
async def test_a_queue_key_reads_as_no_job_and_is_left_alone(
    queue: JobQueue, client: redis.Redis, prefix: str, key: str
) -> None:
    job_id = await queue.add("chat", {"n": 1})
    await queue.client.rpush(f"{prefix}:q:{job_id}:logs", "a log line")
    before = {k: await client.type(k) async for k in client.scan_iter(match=f"{prefix}:q:*")}
    target = key.replace("1", job_id)

    assert await queue.get(target) is None
    assert await queue.cancel(target) is CancelOutcome.NOT_FOUND
    assert not await queue.remove(target)
    with pytest.raises(KeyError):
        await queue.retry(target)
    with pytest.raises(InvalidJobId):
        await queue.add("chat", {}, jobId=target)

    after = {k: await client.type(k) async for k in client.scan_iter(match=f"{prefix}:q:*")}
    assert after == before  # nothing removed, nothing written over
    assert (await queue.get(job_id)).state == "waiting"  # type: ignore[union-attr]
