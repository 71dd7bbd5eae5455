"""Metrics added up in Redis: a worker's counts and timings, as `GET /metrics` renders them."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import PermanentJobError, WorkerRuntime
from agentqueue.metrics.aggregate import MetricsRecorder
from agentqueue.metrics.exposition import render
from agentqueue.metrics.middleware import JobMetrics
from tests.support.metrics import of, samples
from tests.support.waiting import eventually
from tests.support.workers import MW_OPTIONS, finished


@pytest.fixture
async def queue(client: redis.Redis, prefix: str) -> JobQueue:
    return JobQueue("m", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=10))


async def test_a_workers_jobs_are_counted_and_timed(
    client: redis.Redis, redis_url: str, prefix: str, queue: JobQueue
) -> None:
    recorder = MetricsRecorder(client, prefix=prefix)
    worker = WorkerRuntime("m", redis_url, prefix=prefix, options=MW_OPTIONS,
                           middleware=[JobMetrics(recorder)])
    flaky: dict[str, int] = {}

    async def ok(ctx: JobContext) -> int:
        return 1

    async def twice(ctx: JobContext) -> int:  # fails once, then succeeds: one retry
        flaky[ctx.id] = flaky.get(ctx.id, 0) + 1
        if flaky[ctx.id] == 1:
            raise RuntimeError("once")
        return 2

    async def refuse(ctx: JobContext) -> None:
        raise PermanentJobError("no")

    for name, handler in (("ok", ok), ("twice", twice), ("refuse", refuse)):
        worker.register(name, handler)
    ids = [await queue.add("ok", {}) for _ in range(3)]
    ids += [await queue.add("twice", {}, attempts=2), await queue.add("refuse", {})]
    await worker.start()
    try:
        for job_id in ids:
            await finished(queue, job_id)
        workers_seen = samples(await _render_after_flush(recorder, client, prefix, queue))
        assert of(workers_seen, "agentqueue_workers", queue="m") == 1
    finally:
        await worker.stop(grace_s=0)
    await recorder.close()
    found = samples(await render(client, prefix, {"m": queue}))
    assert of(found, "agentqueue_jobs_completed_total", queue="m", type="ok") == 3
    assert of(found, "agentqueue_jobs_completed_total", queue="m", type="twice") == 1
    assert of(found, "agentqueue_jobs_retried_total", queue="m", type="twice") == 1
    assert of(found, "agentqueue_jobs_failed_total", queue="m", type="refuse") == 1
    assert of(found, "agentqueue_jobs", queue="m", state="completed") == 4
    assert of(found, "agentqueue_jobs", queue="m", state="failed") == 1
    assert of(found, "agentqueue_workers", queue="m") == 0  # stopped: off the list at once
    # Every first attempt waited, and every run was timed, each in the full set of buckets.
    assert of(found, "agentqueue_job_wait_seconds_count", queue="m", type="ok") == 3
    runs = {le: n for (name, labels), n in found.items()
            if name == "agentqueue_job_run_seconds_bucket"
            and dict(labels).get("type") == "ok"
            for le in [dict(labels)["le"]]}
    assert runs["+Inf"] == 3 and len(runs) > 10
    assert list(runs.values()) == sorted(runs.values())  # cumulative


async def test_sums_kept_while_redis_is_away_are_written_later(
    client: redis.Redis, prefix: str, queue: JobQueue
) -> None:
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2)
    recorder = MetricsRecorder(unreachable, prefix=prefix)
    recorder.queued("m", "ok")
    recorder.queued("m", "ok")
    await recorder.flush()  # fails: kept
    recorder.client = client
    await recorder.close()
    await unreachable.aclose()
    found = samples(await render(client, prefix, {"m": queue}))
    assert of(found, "agentqueue_jobs_enqueued_total", queue="m", type="ok") == 2


async def _render_after_flush(recorder: MetricsRecorder, client: redis.Redis, prefix: str,
                              queue: JobQueue) -> Any:
    async def rendered() -> bytes | None:
        await recorder.flush()
        text = await render(client, prefix, {"m": queue})
        return text if b'agentqueue_workers{queue="m"} 1.0' in text else None

    return await eventually(rendered, what="the worker's heartbeat")


async def test_provider_calls_tokens_cost_and_latency_are_counted(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    from agentqueue.config import Settings
    from agentqueue.services import build_workers
    from tests.support.fake_openai import FakeOpenAI, text_completion

    with FakeOpenAI().running() as fake:
        fake.reply = lambda _: text_completion("Paris.", prompt_tokens=20, completion_tokens=7)
        settings = Settings(  # type: ignore[call-arg]
            REDIS_URL=redis_url, QUEUE_PREFIX=prefix, OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="gpt-4o-mini",
            AGENTQUEUE_PRICES='{"fake-model": {"input": 1.0, "output": 2.0}}')
        group = build_workers(settings, redis_url, ["ai-tasks"])
        await group.start()
        tasks = JobQueue("ai-tasks", client, prefix=prefix)
        try:
            for n in range(2):
                job_id = await tasks.add("generate-completion", {
                    "conversationId": f"c-{n}", "message": "Capital of France?"})
                assert (await finished(tasks, job_id)).state == "completed"
        finally:
            await group.stop(0)  # writes what is left
    found = samples(await render(client, prefix, {"ai-tasks": tasks}))
    # Labelled with the model that answered (the stand-in says "fake-model"), as billed.
    model = {"provider": "openai", "model": "fake-model"}
    assert of(found, "agentqueue_provider_calls_total", **model, outcome="ok") == 2
    assert of(found, "agentqueue_provider_tokens_total", **model, direction="input") == 40
    assert of(found, "agentqueue_provider_tokens_total", **model, direction="output") == 14
    cost = of(found, "agentqueue_provider_cost_usd_total", **model)
    assert cost is not None and cost > 0
    assert of(found, "agentqueue_provider_call_seconds_count", **model) == 2
