"""What the worker loop itself owns, against a real Redis: taking the next job in the same call
that finishes one, lock renewal, shutdown, recovery after a killed worker process, delayed
jobs on an idle worker, and being visible as a worker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from bullmq import Queue

from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import JobContext, WorkerOptions, WorkerRuntime
from tests.support.waiting import eventually
from tests.support.workers import worker_maker

FAST = WorkerOptions(concurrency=2, job_timeout_s=10, lock_duration_ms=2000,
                     stalled_interval_ms=1000, reconnect_delay_ms=100)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def queue(client: redis.Redis, prefix: str) -> JobQueue:
    return JobQueue("loop", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))


@pytest.fixture
async def make_worker(
    redis_url: str, prefix: str
) -> AsyncIterator[Callable[..., WorkerRuntime]]:
    async with worker_maker(redis_url, prefix, "loop", FAST) as make:
        yield make


async def state_of(queue: JobQueue, job_id: str, *states: str) -> Any:
    async def probe() -> Any:
        view = await queue.get(job_id)
        return view if view and view.state in states else None

    return await eventually(probe, what=f"job {job_id} to be {'/'.join(states)}")


async def test_a_backlog_runs_each_job_once_with_its_result(queue, make_worker,
                                                            client, prefix) -> None:
    # Queued before the worker starts: after the first fetches, each finish takes the next.
    ids = [await queue.add("square", {"n": n}) for n in range(40)]
    ids.append(await queue.add("square", {"n": "not a number"}, attempts=1))
    ids += [await queue.add("square", {"n": n}) for n in range(40, 50)]
    runs: list[str] = []

    async def square(ctx: JobContext) -> int:
        runs.append(ctx.id)
        return int(ctx.data["n"]) ** 2

    await make_worker({"square": square}, WorkerOptions(concurrency=3)).start()
    views = [await state_of(queue, job_id, "completed", "failed") for job_id in ids]
    assert sorted(runs) == sorted(ids)  # each ran once
    assert [v.result for v in views[:40]] == [n * n for n in range(40)]
    assert [v.result for v in views[41:]] == [n * n for n in range(40, 50)]
    assert views[40].state == "failed" and "invalid literal" in (views[40].failed_reason or "")
    # The worker's name is on the jobs it took (as Node's worker records it), those it took
    # by finishing another included.
    assert {await client.hget(f"{prefix}:loop:{i}", "pb") for i in ids[:40]} == {"agentqueue"}


async def test_lock_renewal_keeps_a_long_job_from_stalling(queue, make_worker) -> None:
    short_lock = WorkerOptions(concurrency=1, lock_duration_ms=300, stalled_interval_ms=200)
    runs = 0

    async def long(ctx: JobContext) -> str:
        nonlocal runs
        runs += 1
        await asyncio.sleep(1.5)  # the work: five lock durations
        return "done"

    await make_worker({"long": long}, short_lock).start()
    job_id = await queue.add("long", {})
    view = await state_of(queue, job_id, "completed", "failed")
    assert (view.state, view.result, view.attempts_made, runs) == ("completed", "done", 1, 1)


async def test_stop_finishes_the_active_job_and_takes_no_other(queue, make_worker) -> None:
    running = asyncio.Event()

    async def slow(ctx: JobContext) -> str:
        running.set()
        await asyncio.sleep(0.3)  # the work itself
        return "done"

    worker = make_worker({"slow": slow}, WorkerOptions(concurrency=1))
    first = await queue.add("slow", {})
    rest = [await queue.add("slow", {}) for _ in range(3)]
    await worker.start()
    await asyncio.wait_for(running.wait(), 20)
    await worker.stop(grace_s=10)
    assert (await queue.get(first)).state == "completed"  # type: ignore[union-attr]
    assert [(await queue.get(i)).state for i in rest] == ["waiting"] * 3  # type: ignore[union-attr]


async def test_a_delayed_job_runs_once_due_on_an_idle_worker(queue, make_worker) -> None:
    async def stamp(ctx: JobContext) -> int:
        return int(ctx.job.timestamp)

    await make_worker({"stamp": stamp}).start()
    job_id = await queue.add("stamp", {}, delay=400)
    view = await state_of(queue, job_id, "completed")
    assert view.processed_at_ms - view.result >= 400


async def test_the_worker_is_listed_among_the_queues_workers(
    make_worker, client: redis.Redis, prefix: str
) -> None:
    worker = make_worker({}, WorkerOptions(concurrency=1, name="listed"))
    await worker.start()
    bullmq_queue = Queue("loop", {"connection": client, "prefix": prefix})

    async def listed() -> Any:
        workers = await bullmq_queue.get_workers()
        return [w for w in workers if w.get("rawname", "").endswith(":w:listed")]

    assert await eventually(listed, what="the worker in getWorkers")


KILLED_WORKER = textwrap.dedent("""
    import asyncio, sys
    from agentqueue.engine.worker import WorkerOptions, WorkerRuntime

    async def main() -> None:
        worker = WorkerRuntime("loop", sys.argv[1], prefix=sys.argv[2], options=WorkerOptions(
            concurrency=1, lock_duration_ms=1000, stalled_interval_ms=500))

        async def hang(ctx):
            print("running", flush=True)
            await asyncio.Event().wait()

        worker.register("hang", hang)
        await worker.start()
        await asyncio.Event().wait()

    asyncio.run(main())
""")


async def test_a_job_whose_worker_process_is_killed_runs_again_elsewhere(
    queue, make_worker, redis_url: str, prefix: str
) -> None:
    job_id = await queue.add("hang", {}, attempts=3)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_WORKER, redis_url, prefix, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"running"
    process.send_signal(signal.SIGKILL)
    await process.wait()

    async def finish(ctx: JobContext) -> dict[str, int]:
        return {"attempt": ctx.attempt, "stalls": ctx.stalls}

    await make_worker({"hang": finish}).start()  # its stalled-job check finds the job
    view = await state_of(queue, job_id, "completed", "failed")
    assert (view.state, view.result) == ("completed", {"attempt": 2, "stalls": 1})


async def test_a_fetched_job_reads_as_the_packages_own_job_does(
    queue, client: redis.Redis, prefix: str
) -> None:
    from bullmq import Job

    from agentqueue.engine.channel import CommandChannel
    from agentqueue.engine.queue_scripts import QueueScripts

    job_id = await queue.add("shape", {"text": "héllo", "n": [1, 2.5, None]}, priority=3,
                             delay=60_000, attempts=4)
    await client.hset(f"{prefix}:loop:{job_id}", mapping={"stc": 2, "atm": 1, "defa": "x"})
    raw = await client.hgetall(f"{prefix}:loop:{job_id}")
    scripts = QueueScripts(client, CommandChannel(client), queue="loop", prefix=prefix,
                           lock_duration_ms=1000, worker_name="t")
    ours = vars(scripts.job_from_fields(raw, job_id, "token"))
    theirs = vars(Job.fromJSON(scripts, raw, job_id))  # type: ignore[arg-type]
    for differs in ("queue", "backend", "token"):
        ours.pop(differs), theirs.pop(differs)
    assert ours == theirs
