"""Group commit: concurrent writers share transactions, and nobody is told "done" before their
write is committed; what is written behind is flushed when the records close."""

from __future__ import annotations

import asyncio

from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from tests.records.test_records import Database

OWNER = JobOwner(user_id="u1", org_id="o1")


async def test_concurrent_records_share_transactions_and_each_is_committed_when_returned(
    records: Records, database: Database
) -> None:
    # Another connection (as another process would) sees each record the moment its writer
    # is told it exists.
    observer = await Records.connect(database.url, schema=database.schema)
    seen: list[bool] = []

    async def create(n: int) -> None:
        await records.create_job(queue="q", job_id=str(n), type="chat", data={"n": n},
                                 owner=OWNER, status="queued", passed_through=("pending",))
        seen.append(await observer.get("q", str(n)) is not None)

    try:
        await asyncio.gather(*(create(n) for n in range(1, 41)))
    finally:
        await observer.close()
    assert seen == [True] * 40
    assert records._submissions.flushes < 40  # they did share transactions
    history = await records.history("q", "7")
    assert [event.status for event in history] == ["pending", "queued"]


async def test_a_clash_in_a_batch_fails_only_the_clashing_record(records: Records) -> None:
    await records.create_job(queue="q", job_id="5", type="chat", data={}, owner=OWNER)
    outcomes = await asyncio.gather(
        *(records.create_job(queue="q", job_id=str(n), type="chat", data={}, owner=OWNER)
          for n in range(1, 11)),
        return_exceptions=True)
    failed = [n for n, outcome in zip(range(1, 11), outcomes, strict=True)
              if isinstance(outcome, Exception)]
    assert failed == [5]
    listed, total = await records.list_jobs(queues=["q"], limit=50)
    assert total == 10


async def test_concurrent_marks_keep_each_jobs_history_in_order(records: Records) -> None:
    for n in range(1, 21):
        await records.create_job(queue="q", job_id=str(n), type="chat", data={}, owner=OWNER)

    async def run(n: int) -> None:
        assert await records.mark("q", str(n), "active", attempt=0)
        assert await records.mark("q", str(n), "completed", attempt=0, result={"n": n},
                                  usage=(3, 4, 0.5))

    await asyncio.gather(*(run(n) for n in range(1, 21)))
    for n in (1, 20):
        record = await records.get("q", str(n))
        assert record is not None and record.status == "completed"
        assert record.result == {"n": n} and record.input_tokens == 3
        assert [e.status for e in await records.history("q", str(n))] == [
            "queued", "active", "completed"]
    # A late event of a finished job changes nothing, batched or not.
    assert await records.mark("q", "3", "active", attempt=0)
    assert (await records.get("q", "3")).status == "completed"  # type: ignore[union-attr]


async def test_closing_the_records_flushes_progress_written_behind(database: Database) -> None:
    await upgrade(database.url, schema=database.schema)
    records = await Records.connect(database.url, schema=database.schema)
    await records.create_job(queue="q", job_id="1", type="chat", data={}, owner=OWNER,
                             status="active")
    records.note_progress("q", "1", {"percent": 10})
    records.note_progress("q", "1", {"percent": 40})  # only the latest is kept
    await records.close()
    reopened = await Records.connect(database.url, schema=database.schema)
    try:
        record = await reopened.get("q", "1")
        assert record is not None and record.progress == {"percent": 40}
    finally:
        await reopened.close()
