"""The time-limit middleware against a real Redis: the job's own `timeout` option (ms, Bull 3's
name), else its type's, else the worker's, fails a job that runs too long."""

from __future__ import annotations

import asyncio

from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.time_limit import TimeLimit
from tests.support.workers import StartWorker, finished


async def hangs(ctx: JobContext) -> None:
    await asyncio.Event().wait()


async def test_a_jobs_own_timeout_option_fails_it_with_a_timeout_reason(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    await start_worker({"hang": hangs}, [TimeLimit(default_s=60)], timeouts={"hang": 60})
    view = await finished(mw_queue, await mw_queue.add("hang", {}, timeout=200, attempts=1))
    assert (view.state, view.failed_reason) == ("failed", "job timed out after 0.2s")


async def test_a_job_types_timeout_applies_when_the_job_sets_none(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    await start_worker({"hang": hangs}, [TimeLimit(default_s=60)], timeouts={"hang": 0.3})
    view = await finished(mw_queue, await mw_queue.add("hang", {}, attempts=1))
    assert view.failed_reason == "job timed out after 0.3s"


async def test_the_workers_limit_applies_to_the_rest(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    await start_worker({"hang": hangs}, [TimeLimit(default_s=0.25)])
    view = await finished(mw_queue, await mw_queue.add("hang", {}, attempts=1))
    assert view.failed_reason == "job timed out after 0.25s"


async def test_a_timed_out_job_is_retried_while_it_has_attempts(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    async def slow_first(ctx: JobContext) -> int:
        if ctx.attempt == 1:
            await asyncio.Event().wait()
        return ctx.attempt

    await start_worker({"slow": slow_first}, [TimeLimit(default_s=60)])
    view = await finished(mw_queue, await mw_queue.add("slow", {}, timeout=200, attempts=2))
    assert (view.state, view.result) == ("completed", 2)


async def test_the_handlers_own_timeout_keeps_its_message(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    async def upstream_slow(ctx: JobContext) -> None:
        raise TimeoutError("the upstream answered nothing within 2s")

    await start_worker({"slow": upstream_slow}, [TimeLimit(default_s=60)])
    view = await finished(mw_queue, await mw_queue.add("slow", {}, timeout=5000, attempts=1))
    assert view.failed_reason == "the upstream answered nothing within 2s"
