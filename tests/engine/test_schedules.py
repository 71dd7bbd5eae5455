"""Schedules on the bullmq package's job schedulers, run by our worker loop (real Redis)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as redis
from bullmq import Job

from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.schedules import (
    Repeat,
    ScheduleOwner,
    ScheduleStore,
    ScheduleView,
    parse_run_id,
)
from agentqueue.engine.worker import WorkerOptions
from tests.support.waiting import eventually
from tests.support.workers import finished, worker_maker

NY = ZoneInfo("America/New_York")
OPTIONS = WorkerOptions(concurrency=2, job_timeout_s=10, lock_duration_ms=2000,
                        stalled_interval_ms=1000, reconnect_delay_ms=100)


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=NY).timestamp() * 1000)  # type: ignore[misc]


def local(at_ms: int | None) -> str:
    assert at_ms is not None
    return datetime.fromtimestamp(at_ms / 1000, NY).isoformat()


def schedule(schedule_id: str, repeat: Repeat, **fields: Any) -> ScheduleView:
    return ScheduleView(id=schedule_id, queue="sched", name="tick", data={"n": 1},
                        opts={"attempts": 1}, repeat=repeat, owner=ScheduleOwner("u1"), **fields)


def store_of(jobs: JobQueue) -> ScheduleStore:
    return ScheduleStore(jobs.bullmq, jobs.client, prefix=jobs.prefix, name=jobs.name)


async def test_every_run_is_taken_once_across_three_workers(
        client: redis.Redis, redis_url: str, prefix: str) -> None:
    jobs = JobQueue("sched", client, prefix=prefix, defaults=QueueDefaults(attempts=1))
    store = store_of(jobs)
    taken: list[str] = []

    async def tick(ctx: JobContext) -> str:
        taken.append(ctx.id)
        return "ok"

    async with worker_maker(redis_url, prefix, "sched", OPTIONS) as make:
        for _ in range(3):
            await make({"tick": tick}).start()
        await store.upsert(schedule("fast", Repeat(every_ms=300)))
        await eventually(lambda: _true(len(taken) >= 8), what="eight runs")
        await store.remove("fast")
    repeats = {run: n for run, n in Counter(taken).items() if n > 1}
    assert repeats == {}, f"runs taken more than once: {repeats}"
    ticks = sorted(parsed[1] for run in taken if (parsed := parse_run_id(run)) is not None)
    assert len(ticks) == len(taken)
    # One chain of runs: a second one would put two runs within one interval.
    assert all(later - earlier >= 300 for earlier, later in zip(ticks, ticks[1:], strict=False))


async def _true(value: bool) -> bool:
    return value


async def test_a_limit_stops_the_schedule(client: redis.Redis, redis_url: str,
                                          prefix: str) -> None:
    jobs = JobQueue("sched", client, prefix=prefix, defaults=QueueDefaults(attempts=1))
    store = store_of(jobs)
    taken: list[str] = []

    async def tick(ctx: JobContext) -> None:
        taken.append(ctx.id)

    async with worker_maker(redis_url, prefix, "sched", OPTIONS) as make:
        await make({"tick": tick}).start()
        await store.upsert(schedule("three", Repeat(every_ms=200, limit=3)))
        await eventually(lambda: _true(len(taken) == 3), what="three runs")
        await finished(jobs, taken[-1])
        view = await store.get("three")
        assert view is not None and view.iterations == 3 and view.next_ms is None
        assert (await jobs.counts())["delayed"] == 0 and len(set(taken)) == 3


async def _run_due_now(jobs: JobQueue, store: ScheduleStore, schedule_id: str) -> str:
    """Run the schedule's next run now (its clock is in the future): promote its job."""
    view = await store.get(schedule_id)
    assert view is not None and view.next_ms is not None
    run = f"repeat:{schedule_id}:{view.next_ms}"
    job = await Job.fromId(jobs.bullmq, run)
    await job.promote()
    return run


async def test_daylight_saving_days_neither_skip_nor_double_a_run(
        client: redis.Redis, redis_url: str, prefix: str) -> None:
    """The schedule's clock is its start date (next year's change days); each run, taken by a
    worker, queues the next from its own time, as in production."""
    jobs = JobQueue("sched", client, prefix=prefix, defaults=QueueDefaults(attempts=1))
    store = store_of(jobs)

    async def tick(ctx: JobContext) -> None:
        return None

    cases = [  # (pattern, start, first run, the one after it)
        ("30 1 * * *", ms(2027, 3, 13, 12), "2027-03-14T01:30:00-05:00",
         "2027-03-15T01:30:00-04:00"),
        ("30 2 * * *", ms(2027, 3, 13, 12), "2027-03-14T03:00:00-04:00",
         "2027-03-15T02:30:00-04:00"),
        ("30 1 * * *", ms(2027, 11, 6, 12), "2027-11-07T01:30:00-04:00",
         "2027-11-08T01:30:00-05:00"),
    ]
    async with worker_maker(redis_url, prefix, "sched", OPTIONS) as make:
        await make({"tick": tick}).start()
        for index, (pattern, start, first, then) in enumerate(cases):
            schedule_id = f"dst{index}"
            await store.upsert(schedule(schedule_id, Repeat(pattern=pattern, tz="America/New_York",
                                                            start_ms=start)))
            view = await store.get(schedule_id)
            assert view is not None and local(view.next_ms) == first
            run = await _run_due_now(jobs, store, schedule_id)
            await finished(jobs, run)

            async def moved(schedule_id: str = schedule_id) -> ScheduleView | None:
                view = await store.get(schedule_id)
                return view if view and view.iterations == 2 else None

            view = await eventually(moved, what="the next run queued")
            assert local(view.next_ms) == then, pattern
            assert [local(at) for at in view.next_runs_ms(2)][0] == then


async def test_missed_runs_run_once_by_default_or_are_skipped(
        client: redis.Redis, redis_url: str, prefix: str) -> None:
    jobs = JobQueue("sched", client, prefix=prefix, defaults=QueueDefaults(attempts=1))
    store = store_of(jobs)
    ran: list[str] = []

    async def tick(ctx: JobContext) -> str:
        ran.append(ctx.id)
        return "ran"

    # No worker is up when the first runs fall due.
    await store.upsert(schedule("once", Repeat(every_ms=60_000)))
    await store.upsert(schedule("skip", Repeat(every_ms=60_000), catch_up="skip", grace_ms=0))
    created = time.time()
    await eventually(lambda: _true(time.time() - created > 0.05), what="the runs to be late")
    once, skip = await store.get("once"), await store.get("skip")
    assert once is not None and skip is not None
    async with worker_maker(redis_url, prefix, "sched", OPTIONS) as make:
        await make({"tick": tick}).start()
        late_once = await finished(jobs, f"repeat:once:{once.next_ms}")
        late_skip = await finished(jobs, f"repeat:skip:{skip.next_ms}")
    assert late_once.result == "ran"
    assert late_skip.result["skipped"] is True
    assert ran == [f"repeat:once:{once.next_ms}"]


async def test_no_run_after_the_end_date(client: redis.Redis, redis_url: str,
                                         prefix: str) -> None:
    jobs = JobQueue("sched", client, prefix=prefix, defaults=QueueDefaults(attempts=1))
    store = store_of(jobs)
    ran: list[str] = []

    async def tick(ctx: JobContext) -> None:
        ran.append(ctx.id)

    end = int(time.time() * 1000) + 300
    async with worker_maker(redis_url, prefix, "sched", OPTIONS) as make:
        await make({"tick": tick}).start()
        await store.upsert(schedule("ending", Repeat(every_ms=200, end_ms=end)))

        async def ended() -> ScheduleView | None:
            view = await store.get("ending")
            return view if view is not None and view.next_ms is None else None

        await eventually(ended, what="the schedule to end")

        async def settled() -> list[Any] | None:
            counts = await jobs.counts()
            if counts["delayed"] or counts["waiting"] or counts["active"]:
                return None
            return await jobs.page(["completed"])

        done = await eventually(settled, what="its runs to finish")
    assert ran, "no run ran"
    for view in done:
        parsed = parse_run_id(view.id)
        assert parsed is not None
        if parsed[1] <= end:
            assert view.id in ran
        else:
            assert view.id not in ran and view.result["skipped"] is True
