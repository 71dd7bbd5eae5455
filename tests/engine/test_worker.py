"""WorkerRuntime against a real Redis: dispatch, retries, timeouts, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.engine.middleware import Middleware
from agentqueue.engine.queue import CANCELLED_REASON, CancelOutcome, JobQueue, QueueDefaults
from agentqueue.engine.worker import JobContext, PermanentJobError, WorkerOptions, WorkerRuntime
from tests.support.waiting import eventually
from tests.support.workers import worker_maker

FAST = WorkerOptions(concurrency=4, job_timeout_s=5, lock_duration_ms=2000,
                     stalled_interval_ms=1000, reconnect_delay_ms=100)


@pytest.fixture
async def queue(client: redis.Redis, prefix: str) -> JobQueue:
    return JobQueue("w", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))


@pytest.fixture
async def make_worker(
    redis_url: str, prefix: str
) -> AsyncIterator[Callable[..., WorkerRuntime]]:
    async with worker_maker(redis_url, prefix, "w", FAST) as make:
        yield make


async def finished(queue: JobQueue, job_id: str) -> Any:
    async def probe() -> Any:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(probe, what=f"job {job_id} to finish")


async def test_runs_the_handler_registered_for_the_job_name(queue, make_worker) -> None:
    async def echo(ctx: JobContext) -> dict[str, Any]:
        await ctx.progress(50)
        return {"echo": ctx.data["text"], "attempt": ctx.attempt}

    await make_worker({"echo": echo}).start()
    view = await finished(queue, await queue.add("echo", {"text": "hello"}))
    assert view.state == "completed"
    assert view.result == {"echo": "hello", "attempt": 1}
    assert view.attempts_made == 1 and view.processed_at_ms and view.finished_at_ms


async def test_failing_job_is_retried_then_succeeds(queue, make_worker) -> None:
    async def flaky(ctx: JobContext) -> str:
        if ctx.attempt < 3:
            raise RuntimeError(f"boom {ctx.attempt}")
        return "third time lucky"

    await make_worker({"flaky": flaky}).start()
    view = await finished(queue, await queue.add("flaky", {}))
    assert (view.state, view.result, view.attempts_made) == ("completed", "third time lucky", 3)


async def test_job_fails_after_its_attempts_with_the_last_reason(queue, make_worker) -> None:
    async def broken(ctx: JobContext) -> None:
        raise RuntimeError(f"AI Service call failed (attempt {ctx.attempt})")

    await make_worker({"broken": broken}).start()
    view = await finished(queue, await queue.add("broken", {}))
    assert view.state == "failed" and view.attempts_made == 3
    assert view.failed_reason == "AI Service call failed (attempt 3)"


async def test_permanent_error_and_unknown_name_fail_without_retry(queue, make_worker) -> None:
    async def bad_input(ctx: JobContext) -> None:
        raise PermanentJobError("message must be a non-empty string")

    await make_worker({"bad": bad_input}).start()
    bad = await finished(queue, await queue.add("bad", {}))
    assert bad.attempts_made == 1 and bad.failed_reason == "message must be a non-empty string"
    unknown = await finished(queue, await queue.add("nobody-handles-this", {}))
    assert unknown.attempts_made == 1 and "no handler" in (unknown.failed_reason or "")


async def test_a_job_over_its_timeout_fails_with_a_timeout_reason(queue, make_worker) -> None:
    forever = asyncio.Event()

    async def hangs(ctx: JobContext) -> None:
        await forever.wait()

    options = WorkerOptions(concurrency=1, job_timeout_s=0.2, lock_duration_ms=2000)
    await make_worker({"hang": hangs}, options).start()
    view = await finished(queue, await queue.add("hang", {}, attempts=1))
    assert view.state == "failed" and "timed out after 0.2s" in (view.failed_reason or "")


async def test_a_handlers_own_timeout_keeps_its_reason(queue, make_worker) -> None:
    # A limit of the handler's own (an upstream call's, a job type's) is not the worker's
    # job timeout: the reason is the handler's, not "job timed out after 300s".
    async def upstream_slow(ctx: JobContext) -> None:
        raise TimeoutError("the upstream answered nothing within 2s")

    await make_worker({"slow": upstream_slow}).start()
    view = await finished(queue, await queue.add("slow", {}, attempts=1))
    assert view.failed_reason == "the upstream answered nothing within 2s"


async def test_progress_in_seed_001s_current_total_message_form(queue, make_worker) -> None:
    async def steps(ctx: JobContext) -> None:
        await ctx.progress(10, 40, "Processing item 10 of 40")
        first = (await queue.get(ctx.id)).progress  # type: ignore[union-attr]
        await ctx.progress(current=40, total=40)
        second = (await queue.get(ctx.id)).progress  # type: ignore[union-attr]
        await ctx.progress(75)
        return [first, second, (await queue.get(ctx.id)).progress]  # type: ignore[union-attr]

    await make_worker({"steps": steps}).start()
    view = await finished(queue, await queue.add("steps", {}))
    assert view.result == [
        {"current": 10, "total": 40, "percent": 25.0, "message": "Processing item 10 of 40"},
        {"current": 40, "total": 40, "percent": 100.0},
        75,
    ]


async def test_cancelling_an_active_job_stops_it_without_retry(queue, make_worker) -> None:
    running = asyncio.Event()
    stopped = asyncio.Event()

    async def long(ctx: JobContext) -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    await make_worker({"long": long}).start()
    job_id = await queue.add("long", {})
    await asyncio.wait_for(running.wait(), 20)
    assert await queue.cancel(job_id) is CancelOutcome.REQUESTED
    # cancel() answers once the worker has stopped the job (it follows the events stream).
    assert stopped.is_set()
    assert (await queue.get(job_id)).state == "failed"  # type: ignore[union-attr]
    view = await finished(queue, job_id)
    assert view.state == "failed" and view.failed_reason == CANCELLED_REASON
    assert view.attempts_made == 1


async def test_concurrency_runs_jobs_side_by_side(queue, make_worker) -> None:
    inside = 0
    peak = 0
    release = asyncio.Event()

    async def hold(ctx: JobContext) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await release.wait()
        inside -= 1

    await make_worker({"hold": hold}).start()
    ids = [await queue.add("hold", {}) for _ in range(6)]

    async def four_inside() -> bool:
        return inside == 4

    await eventually(four_inside, what="4 concurrent jobs")
    release.set()
    for job_id in ids:
        assert (await finished(queue, job_id)).state == "completed"
    assert peak == 4  # FAST.concurrency


async def test_stop_lets_the_active_job_finish(queue, make_worker) -> None:
    running = asyncio.Event()

    async def slow(ctx: JobContext) -> str:
        running.set()
        await asyncio.sleep(0.3)  # the work itself, not synchronisation
        return "done"

    worker = make_worker({"slow": slow})
    await worker.start()
    job_id = await queue.add("slow", {})
    await asyncio.wait_for(running.wait(), 20)
    await worker.stop(grace_s=10)
    view = await queue.get(job_id)
    assert view is not None and (view.state, view.result) == ("completed", "done")


async def run_until_its_worker_dies(make_worker: Callable[..., WorkerRuntime],
                                    handler_runs: list[JobContext],
                                    options: WorkerOptions = FAST) -> None:
    """Start a worker whose handler hangs; once it has the job, stop the worker without
    finishing it (as a crash would): the job keeps its lock until it expires, then stalls."""
    started = asyncio.Event()

    async def hang(ctx: JobContext) -> None:
        handler_runs.append(ctx)
        started.set()
        await asyncio.Event().wait()

    worker = make_worker({"hang": hang}, options)
    await worker.start()
    await asyncio.wait_for(started.wait(), 30)
    await worker.stop(grace_s=0)


async def test_a_stalled_jobs_re_run_spends_one_of_its_attempts(queue, make_worker) -> None:
    runs: list[JobContext] = []
    job_id = await queue.add("hang", {}, attempts=3)
    await run_until_its_worker_dies(make_worker, runs)
    await run_until_its_worker_dies(make_worker, runs)

    async def finish(ctx: JobContext) -> dict[str, int]:
        return {"attempt": ctx.attempt, "stalls": ctx.stalls}

    await make_worker({"hang": finish}).start()
    view = await finished(queue, job_id)
    assert [(r.attempt, r.stalls) for r in runs] == [(1, 0), (2, 1)]
    assert (view.state, view.result) == ("completed", {"attempt": 3, "stalls": 1})
    assert view.attempts_made == 3


async def test_a_job_stalled_more_often_than_its_attempts_fails_saying_so(
    queue, make_worker
) -> None:
    runs: list[JobContext] = []
    job_id = await queue.add("hang", {}, attempts=2)
    await run_until_its_worker_dies(make_worker, runs)
    await run_until_its_worker_dies(make_worker, runs)

    async def never(ctx: JobContext) -> None:
        raise AssertionError("a job with no attempts left was run")

    await make_worker({"hang": never}).start()
    view = await finished(queue, job_id)
    assert view.state == "failed" and "stalled too often" in (view.failed_reason or "")
    assert view.attempts_made == 2 and len(runs) == 2


async def test_max_stalled_count_fails_a_job_that_still_has_attempts(queue, make_worker) -> None:
    capped = dataclasses.replace(FAST, max_stalled_count=1)
    runs: list[JobContext] = []
    job_id = await queue.add("hang", {}, attempts=5)
    await run_until_its_worker_dies(make_worker, runs, capped)
    await run_until_its_worker_dies(make_worker, runs, capped)
    await make_worker({}, capped).start()  # its stalled-job check still runs
    view = await finished(queue, job_id)
    assert view.state == "failed" and "stalled" in (view.failed_reason or "")
    assert len(runs) == 2


async def test_middleware_hears_of_the_jobs_its_stalled_check_put_back(
    queue, make_worker, redis_url: str, prefix: str
) -> None:
    runs: list[JobContext] = []
    job_id = await queue.add("hang", {}, attempts=3)
    await run_until_its_worker_dies(make_worker, runs)
    heard: list[tuple[str, list[str]]] = []

    class Listening(Middleware):
        async def on_stalled(self, queue: str, job_ids: list[str]) -> None:
            heard.append((queue, job_ids))

    async def finish(ctx: JobContext) -> None:
        return None

    checker = WorkerRuntime("w", redis_url, prefix=prefix, options=FAST,
                            middleware=[Listening()])
    checker.register("hang", finish)
    await checker.start()
    try:
        assert (await finished(queue, job_id)).state == "completed"
        assert heard == [("w", [job_id])]
    finally:
        await checker.stop(grace_s=0)


async def test_with_metrics_on_finished_jobs_are_counted_per_minute_as_bullmq_does(
    queue, make_worker
) -> None:
    async def ok(ctx: JobContext) -> int:
        return 1

    async def bad(ctx: JobContext) -> None:
        raise PermanentJobError("no")

    ids = [await queue.add("ok", {}) for _ in range(3)] + [await queue.add("bad", {})]
    await make_worker({"ok": ok, "bad": bad},
                      dataclasses.replace(FAST, metrics_minutes=60)).start()
    for job_id in ids:
        await finished(queue, job_id)
    completed, failed = await queue.metrics("completed"), await queue.metrics("failed")
    assert (completed.total, failed.total) == (3, 1)
    # All within the last two minutes (a minute may have turned meanwhile), newest first.
    assert sum(completed.per_minute[:2]) == 3 and sum(failed.per_minute[:2]) == 1
    assert len(completed.per_minute) <= 60
    with pytest.raises(ValueError, match="completed or failed"):
        await queue.metrics("waiting")
