"""The queue handle (`app.queue(name)`) against real Redis and SQLite, with a real worker running
the App's job types in this process when a test needs jobs to run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.maintenance.repair import RepairService
from tests.conftest import delete_prefix
from tests.support.waiting import eventually
from tests.support.workers import app_worker


class Item(BaseModel):
    n: int


# Released by a test to let its "held" job finish.
held: dict[str, asyncio.Event] = {}


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings)

    @app.job("square", attempts=1)
    async def square(ctx: agentqueue.JobContext, data: Item) -> int:
        await ctx.progress(1, 2, "half way")
        return data.n * data.n

    @app.job("refuse", attempts=1)
    async def refuse(ctx: agentqueue.JobContext, data: Item) -> None:
        raise agentqueue.PermanentJobError(f"no {data.n}")

    @app.job("held", attempts=1)
    async def hold(ctx: agentqueue.JobContext, data: Item) -> int:
        await held.setdefault(ctx.id, asyncio.Event()).wait()
        return data.n

    return app


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    held.clear()
    settings = Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
                        AGENTQUEUE_DATA_DIR=str(tmp_path / "data"))
    app = make_app(settings)
    yield app
    await app.close()
    await asyncio.to_thread(app.close_sync)
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


@pytest.fixture
async def worker(app: agentqueue.App) -> AsyncIterator[None]:
    async with app_worker(app):
        try:
            yield
        finally:
            for gate in held.values():
                gate.set()


async def record_status(app: agentqueue.App, job_id: str) -> str | None:
    record = await (await app._backend()).records.get("jobs", job_id)
    return None if record is None else record.status


async def test_counts_and_lists_by_state_with_paging(app: agentqueue.App) -> None:
    jobs = app.queue("jobs")
    low = await app.enqueue("square", {"n": 1}, priority=1)
    high = await app.enqueue("square", {"n": 2}, priority=9)
    normal = await app.enqueue("square", {"n": 3})
    later = await app.enqueue("square", {"n": 4}, delay_ms=3_600_000)

    counts = await jobs.counts()
    assert counts == agentqueue.QueueCounts(waiting=3, active=0, completed=0, failed=0,
                                            delayed=1, paused=0, prioritized=3)
    assert counts.total == 4
    # In the order they will run: higher priority first.
    assert [v.id for v in await jobs.waiting()] == [high.id, normal.id, low.id]
    assert [v.id for v in await jobs.waiting(1, 1)] == [normal.id]
    assert [v.id for v in await jobs.waiting(1)] == [normal.id, low.id]
    first = (await jobs.waiting(0, 0))[0]
    assert (first.name, first.data, first.state) == ("square", {"n": 2}, "waiting")
    assert first.created_at_ms is not None
    assert [v.id for v in await jobs.delayed()] == [later.id]
    assert await jobs.active() == [] and await jobs.completed() == []


async def test_pause_and_resume(app: agentqueue.App) -> None:
    jobs = app.queue("jobs")
    job = await app.enqueue("square", {"n": 5})
    assert not await jobs.is_paused()
    await jobs.pause()
    assert await jobs.is_paused()
    counts = await jobs.counts()
    assert (counts.waiting, counts.paused) == (0, 1)
    assert [(v.id, v.state) for v in await jobs.jobs("paused")] == [(job.id, "paused")]
    assert await jobs.waiting() == []
    await jobs.resume()
    assert not await jobs.is_paused()
    assert [v.id for v in await jobs.waiting()] == [job.id]


async def test_a_paused_queue_runs_nothing_until_resumed(
    app: agentqueue.App, worker: None
) -> None:
    jobs = app.queue("jobs")
    await jobs.pause()
    job = await app.enqueue("square", {"n": 6})
    with pytest.raises(TimeoutError):
        await job.wait(timeout=0.5)
    assert await job.status() == "paused"
    await jobs.resume()
    assert await job.wait(timeout=30) == 36


async def test_finished_jobs_listed_newest_first_and_clean_keeps_records(
    app: agentqueue.App, worker: None
) -> None:
    jobs = app.queue("jobs")
    done = []
    for n in (2, 3):  # one after the other: they finish in that order
        done.append(await app.enqueue("square", {"n": n}))
        await done[-1].wait(timeout=30)
    refused = await app.enqueue("refuse", {"n": 7})
    with pytest.raises(agentqueue.JobFailed):
        await refused.wait(timeout=30)

    completed = await jobs.completed()
    assert [(v.id, v.result) for v in completed] == [(done[1].id, 9), (done[0].id, 4)]
    assert completed[0].finished_at_ms is not None
    [failed] = await jobs.failed()
    assert (failed.id, failed.failed_reason) == (refused.id, "no 7")

    await eventually(lambda: record_status(app, done[0].id), what="the record written")
    assert await jobs.clean(3600, "completed") == []  # none finished an hour ago
    assert sorted(await jobs.clean(0, "completed")) == sorted(j.id for j in done)
    assert await jobs.completed() == []
    assert (await jobs.counts()).failed == 1
    # The records keep the history: the handle still answers from them.
    await eventually(lambda: _is(record_status(app, done[0].id), "completed"),
                     what="the record completed")
    assert await done[0].status() == "completed"
    assert await done[0].result() == 4


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected


async def test_drain_cancels_pending_jobs_and_repair_leaves_them_cancelled(
    app: agentqueue.App,
) -> None:
    jobs = app.queue("jobs")
    pending = [await app.enqueue("square", {"n": n}) for n in (1, 2)]
    later = await app.enqueue("square", {"n": 3}, delay_ms=3_600_000)
    waiter = asyncio.create_task(pending[0].wait(timeout=30))

    drained = await jobs.drain()
    assert sorted(drained) == sorted([*(j.id for j in pending), later.id])
    assert (await jobs.counts()).total == 0
    with pytest.raises(agentqueue.JobFailed, match="Cancelled"):
        await waiter
    for job in [*pending, later]:
        assert await record_status(app, job.id) == "cancelled"
        assert await job.status() == "cancelled"

    # The repair service queues again a `queued` record whose job is missing; these are not.
    backend = await app._backend()
    repair = RepairService(backend.records, backend.queues, settle_s=0)
    report = await repair.run_once()
    assert report.requeued == 0
    assert (await jobs.counts()).total == 0
    assert await record_status(app, pending[0].id) == "cancelled"


async def test_empty_and_clean_of_waiting_jobs(app: agentqueue.App) -> None:
    jobs = app.queue("jobs")
    first = await app.enqueue("square", {"n": 1})
    assert await jobs.clean(3600, "waiting") == []  # added just now
    assert await jobs.clean(0, "wait") == [first.id]  # seed 004's name for the state
    assert await record_status(app, first.id) == "cancelled"
    later = await app.enqueue("square", {"n": 2}, delay_ms=3_600_000)
    assert await jobs.empty() == [later.id]
    assert await record_status(app, later.id) == "cancelled"
    with pytest.raises(ValueError, match="state"):
        await jobs.clean(0, "nonsense")  # type: ignore[arg-type]


async def test_drain_leaves_active_jobs_alone(app: agentqueue.App, worker: None) -> None:
    jobs = app.queue("jobs")
    running = await app.enqueue("held", {"n": 8})
    await eventually(lambda: _is(running.status(), "active"), what="the job active")
    assert await jobs.drain() == []
    assert not await jobs.remove(running.id)  # held by its worker: cancel it instead
    held.setdefault(running.id, asyncio.Event()).set()
    assert await running.wait(timeout=30) == 8


async def test_get_and_remove(app: agentqueue.App, worker: None) -> None:
    jobs = app.queue("jobs")
    assert await jobs.get("404") is None
    assert await jobs.get("meta") is None  # a queue's key, not a job
    with pytest.raises(agentqueue.JobNotFound):
        await jobs.remove("404")

    done = await app.enqueue("square", {"n": 4})
    handle = await jobs.get(done.id)
    assert handle is not None and await handle.wait(timeout=30) == 16
    await eventually(lambda: _is(record_status(app, done.id), "completed"),
                     what="the record completed")
    assert await jobs.remove(done.id)
    assert await jobs.completed() == []
    assert await record_status(app, done.id) == "completed"  # history kept
    assert await jobs.get(done.id) is not None  # known to its record

    await jobs.pause()
    pending = await app.enqueue("square", {"n": 5})
    assert await jobs.remove(pending.id)
    assert await record_status(app, pending.id) == "cancelled"
    assert (await jobs.counts()).paused == 0


async def test_events_of_the_whole_queue(app: agentqueue.App, worker: None) -> None:
    jobs = app.queue("jobs")
    heard: list[agentqueue.QueueEvent] = []

    async def listen() -> None:
        # From the stream's first entry (this test's queue is new): nothing can slip past
        # before the first read.
        async for event in jobs.events(after="0"):
            heard.append(event)
            finished = {e.event for e in heard if e.event in ("completed", "failed")}
            # "drained": the last job finished with none left (one may come earlier too).
            if event.event == "drained" and finished == {"completed", "failed"}:
                return

    listener = asyncio.create_task(listen())
    ok = await app.enqueue("square", {"n": 3})
    bad = await app.enqueue("refuse", {"n": 1})
    async with asyncio.timeout(30):
        await listener
    mine = [(e.event, e.job_id) for e in heard if e.job_id in (ok.id, bad.id)]
    assert ("active", ok.id) in mine and ("progress", ok.id) in mine
    [completed] = [e for e in heard if e.event == "completed"]
    assert (completed.job_id, completed.returnvalue) == (ok.id, 9)
    [failed] = [e for e in heard if e.event == "failed"]
    assert (failed.job_id, failed.failed_reason) == (bad.id, "no 1")
    [progress] = [e for e in heard if e.event == "progress"]
    assert progress.progress == {"current": 1, "total": 2, "percent": 50.0,
                                 "message": "half way"}


async def test_events_filtered_by_kind_and_from_the_start(
    app: agentqueue.App, worker: None
) -> None:
    jobs = app.queue("jobs")
    job = await app.enqueue("square", {"n": 2})
    await job.wait(timeout=30)
    async with asyncio.timeout(30):
        async for event in jobs.events("completed", after="0"):
            assert event.event == "completed"
            assert (event.job_id, event.result) == (job.id, 4)
            break


async def test_sync_twins_from_a_thread(app: agentqueue.App, worker: None) -> None:
    jobs = app.queue("jobs")

    def script() -> tuple[Any, ...]:
        jobs.pause_sync()
        paused = jobs.is_paused_sync()
        since = jobs.last_event_id_sync()
        job = app.enqueue_sync("square", {"n": 9})
        counts = jobs.counts_sync()
        listed = [v.id for v in jobs.jobs_sync("paused")]
        events = jobs.events_sync("completed", after=since)
        jobs.resume_sync()
        done = next(events)
        events.close()
        return (paused, counts.paused, listed == [job.id], done.job_id == job.id,
                done.returnvalue, jobs.get_sync(job.id) is not None,
                [v.result for v in jobs.completed_sync()])

    assert await asyncio.to_thread(script) == (True, 1, True, True, 81, True, [81])


async def test_clean_of_active_jobs_removes_only_those_no_worker_holds(
    app: agentqueue.App, worker: None, prefix: str
) -> None:
    jobs = app.queue("jobs")
    running = await app.enqueue("held", {"n": 1})
    await eventually(lambda: _is(running.status(), "active"), what="the job active")
    # A job left active by a worker that died: in the active list, its lock expired.
    await jobs.pause()
    orphan = await app.enqueue("square", {"n": 2})
    client = (await app._backend()).client
    async with client.pipeline(transaction=True) as pipe:
        pipe.zrem(f"{prefix}:jobs:prioritized", orphan.id)
        pipe.lpush(f"{prefix}:jobs:active", orphan.id)
        await pipe.execute()

    assert await jobs.clean(0, "active") == [orphan.id]
    assert [v.id for v in await jobs.active()] == [running.id]  # its worker holds it
    assert await record_status(app, orphan.id) == "failed"
    assert await orphan.status() == "failed"
    held.setdefault(running.id, asyncio.Event()).set()
    assert await running.wait(timeout=30) == 1
