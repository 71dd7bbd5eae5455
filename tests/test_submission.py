"""Accepting jobs: record first, ids shared with BullMQ, and no collision when Redis forgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from agentqueue.engine.queue import JobQueue
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.submission import JobSubmitter


@pytest.fixture
async def submitter(
    client: redis.Redis, prefix: str, tmp_path: Path
) -> AsyncIterator[JobSubmitter]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
    await upgrade(url)
    records = await Records.connect(url)
    yield JobSubmitter({"q": JobQueue("q", client, prefix=prefix)}, records)
    await records.close()


OWNER = JobOwner(user_id="u1", org_id="o1")


async def test_ids_are_sequential_and_shared_by_record_and_redis(submitter) -> None:
    first = await submitter.submit(queue="q", name="chat", data={"n": 1}, owner=OWNER)
    second = await submitter.submit(queue="q", name="chat", data={"n": 2}, owner=OWNER)
    assert (first.job_id, second.job_id) == ("1", "2")  # no gaps from BullMQ's own count
    view = await submitter.queue("q").get("2")
    assert view is not None and view.data == {"n": 2}
    record = await submitter.records.get("q", "2")
    assert record is not None and record.status == "queued" and record.user_id == "u1"
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
