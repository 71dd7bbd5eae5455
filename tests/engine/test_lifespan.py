"""The lifespan middleware against a real Redis: a job whose `expiresAt` (epoch ms) has passed
when a worker takes it fails at once, without retry, and is not run."""

from __future__ import annotations

import time

from agentqueue.engine.context import JobContext
from agentqueue.engine.lifespan import EXPIRED_REASON, Lifespan
from agentqueue.engine.queue import JobQueue
from tests.support.workers import StartWorker, finished


async def test_a_job_taken_after_its_lifespan_fails_without_running(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    ran: list[str] = []

    async def work(ctx: JobContext) -> str:
        ran.append(ctx.id)
        return "ran"

    now_ms = int(time.time() * 1000)
    expired = await mw_queue.add("work", {}, expiresAt=now_ms - 1, attempts=3)
    alive = await mw_queue.add("work", {}, expiresAt=now_ms + 3_600_000)
    plain = await mw_queue.add("work", {})
    await start_worker({"work": work}, [Lifespan()])
    view = await finished(mw_queue, expired)
    assert (view.state, view.failed_reason, view.attempts_made) == (
        "failed", EXPIRED_REASON, 1)
    assert EXPIRED_REASON == "expired: not run before its lifespan ended"
    assert (await finished(mw_queue, alive)).result == "ran"
    assert (await finished(mw_queue, plain)).result == "ran"
    assert expired not in ran
