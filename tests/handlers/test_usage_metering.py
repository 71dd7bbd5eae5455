"""The usage metering middleware against a real Redis and a real SQL database: each job gets its
meter in `ctx.state["meter"]`, the AI layer's provider wrapper writes to it, and the job's usage
over all its attempts reaches its record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.handlers.metering import CallRecord, JobMeter
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.handlers.usage_metering import UsageMetering
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import build_workers
from tests.support.fake_openai import FakeOpenAI, text_completion
from tests.support.waiting import eventually
from tests.support.workers import StartWorker, finished, mw_queue, start_worker

OWNER = JobOwner(user_id="alice", org_id="acme")
__all__ = ["mw_queue", "start_worker"]  # fixtures used here


async def recorded(records: Records, queue: JobQueue, name: str, data: dict[str, Any],
                   **opts: Any) -> str:
    job_id = await queue.add(name, data, **opts)
    await records.create_job(queue=queue.name, job_id=job_id, type=name, data=data,
                             owner=OWNER, max_attempts=int(opts.get("attempts") or 1))
    return job_id


async def record_with_status(records: Records, queue: str, job_id: str, status: str) -> Any:
    async def probe() -> Any:
        record = await records.get(queue, job_id)
        return record if record is not None and record.status == status else None

    return await eventually(probe, what=f"job {job_id}'s record to be {status}")


async def test_usage_of_every_attempt_reaches_the_record_once(
    mw_queue: JobQueue, start_worker: StartWorker, records: Records, client: redis.Redis,
    prefix: str,
) -> None:
    async def pays(ctx: JobContext) -> str:
        meter = ctx.state["meter"]
        assert isinstance(meter, JobMeter)
        await meter.record(f"attempt-{ctx.attempt}", CallRecord(
            provider="p", model="m", input_tokens=10 * ctx.attempt, output_tokens=1,
            cost_usd=0.5, priced=True))
        if ctx.attempt == 1:
            raise RuntimeError("the answer did not fit")
        return "ok"

    await start_worker({"pays": pays}, [RecordsMiddleware(records),
                                        UsageMetering(client, prefix=prefix)])
    job_id = await recorded(records, mw_queue, "pays", {}, attempts=2)
    assert (await finished(mw_queue, job_id)).state == "completed"
    record = await record_with_status(records, "mw", job_id, "completed")
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (30, 2, 1.0)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


async def test_the_ai_providers_calls_are_metered_into_the_record(
    redis_url: str, prefix: str, client: redis.Redis, records: Records, fake: FakeOpenAI
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, QUEUE_PREFIX=prefix, OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="gpt-4o-mini",
    )
    fake.script(text_completion("42", prompt_tokens=30, completion_tokens=6,
                                model="gpt-4o-mini"))
    group = build_workers(settings, redis_url, ["agent-queue"], records=records, middleware=[])
    await group.start()
    try:
        queue = JobQueue("agent-queue", client, prefix=prefix, defaults=QueueDefaults())
        job_id = await recorded(records, queue, "chat", {"message": "6*7?", "sessionId": "s"})
        record = await record_with_status(records, "agent-queue", job_id, "completed")
    finally:
        await group.stop(0)
    assert (record.input_tokens, record.output_tokens) == (30, 6)
    assert record.cost_usd > 0 and record.result["usage"]["inputTokens"] == 30


async def test_one_metering_serves_several_workers_and_outlives_the_first_to_stop(
    mw_queue: JobQueue, start_worker: StartWorker, records: Records, client: redis.Redis,
    prefix: str,
) -> None:
    """One metering middleware serves every queue's worker (as `build_workers` shares it): a
    worker that stops does not take the others' metering with it, and a call written twice
    (the same call id) still counts once."""
    metering = UsageMetering(client, prefix=prefix)

    async def pays(ctx: JobContext) -> str:
        meter = ctx.state["meter"]
        assert isinstance(meter, JobMeter)
        call = CallRecord(provider="p", model="m", input_tokens=7, output_tokens=3,
                          cost_usd=0.25, priced=True)
        await meter.record("attempt-1:call-1", call)
        await meter.record("attempt-1:call-1", call)  # a repeat of the same call
        return "ok"

    first = await start_worker({"pays": pays}, [RecordsMiddleware(records), metering])
    await start_worker({"pays": pays}, [RecordsMiddleware(records), metering])
    await first.stop(grace_s=0)
    job_id = await recorded(records, mw_queue, "pays", {})
    assert (await finished(mw_queue, job_id)).state == "completed"
    record = await record_with_status(records, "mw", job_id, "completed")
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (7, 3, 0.25)
