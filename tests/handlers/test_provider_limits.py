"""Provider calls under shared limits, through a real worker, a real Redis and the local OpenAI
stand-in: a tokens-per-minute limit holds a job's call until an earlier call's reservation is
settled with its real usage; a 429 with Retry-After pauses the model for every job and is
retried without spending an attempt."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import WorkerGroup, build_workers
from tests.support.fake_openai import FakeOpenAI, ReplyValue, text_completion
from tests.support.waiting import eventually

OWNER = JobOwner(user_id="alice", org_id="acme")
MODEL = "gpt-4o-mini"
QUEUE = "ai-tasks"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


def settings_for(redis_url: str, prefix: str, fake: FakeOpenAI, **more: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, QUEUE_PREFIX=prefix, OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL=MODEL, AI_PROVIDER="openai",
        LIMITS_REFRESH_SECONDS=0.05, **more)


@pytest.fixture
async def workers_for(redis_url: str, records: Records) -> AsyncIterator[Any]:
    started: list[WorkerGroup] = []

    async def start(settings: Settings) -> WorkerGroup:
        group = build_workers(settings, redis_url, [QUEUE], records=records, middleware=[])
        await group.start()
        started.append(group)
        return group

    yield start
    for group in started:
        await group.stop(0)


async def submit(records: Records, queue: JobQueue, data: dict[str, Any]) -> str:
    job_id = await queue.add("generate-completion", data, attempts=3)
    await records.create_job(queue=QUEUE, job_id=job_id, type="generate-completion", data=data,
                             owner=OWNER, max_attempts=3)
    return job_id


async def completed(records: Records, job_id: str) -> Any:
    async def probe() -> Any:
        record = await records.get(QUEUE, job_id)
        assert record is None or record.status != "failed", record.error if record else None
        return record if record is not None and record.status == "completed" else None

    return await eventually(probe, timeout=30, what=f"job {job_id} to complete")


async def test_a_tpm_limit_holds_a_call_until_the_reservation_before_it_is_settled(
    redis_url: str, prefix: str, client: redis.Redis, records: Records, fake: FakeOpenAI,
    workers_for: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agentqueue.limits")
    # Each call reserves ~100 tokens (maxTokens 100); two do not fit in 150 a minute, but
    # one settled at its real 15 tokens leaves room for the next.
    await workers_for(settings_for(redis_url, prefix, fake, MODEL_RATE_LIMITS={
        f"openai/{MODEL}": {"tpm": 150}}))
    queue = JobQueue(QUEUE, client, prefix=prefix, defaults=QueueDefaults())
    tpm_key = f"agentqueue:{prefix}:rl:model:openai:{MODEL}:tpm"
    fake.hold()
    first = await submit(records, queue, {"message": "hi", "maxTokens": 100})

    async def arrived() -> bool:
        return fake.count() == 1

    await eventually(arrived, what="the first call to reach the provider")
    # Reserved: its estimate, the prompt (~1 token) and the 100 it may answer with.
    assert int(await client.get(tpm_key)) == 101

    second = await submit(records, queue, {"message": "yo", "maxTokens": 100})
    async def waiting() -> bool:
        return "waits for its rate limit" in caplog.text

    await eventually(waiting, what="the second call to wait for the limit")
    assert fake.count() == 1  # held back, not sent

    fake.release()
    await completed(records, first)
    record = await completed(records, second)
    assert fake.count() == 2
    assert record.attempts_made == 1
    # Both reservations settled with what the calls really used (10 in + 5 out each).
    assert int(await client.get(tpm_key)) == 30


class ProviderWithRetryAfter:
    """Answers 429 with Retry-After to its first `limited` requests, and to any request while
    a Retry-After it gave is running, as a provider does; counts the 429s."""

    def __init__(self, limited: int, retry_after_s: float = 1.0) -> None:
        self.limited = limited
        self.retry_after_s = retry_after_s
        self.until = 0.0
        self.refusals = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> ReplyValue:
        with self._lock:
            now = time.monotonic()
            if self.limited > 0 or now < self.until:
                self.limited -= 1
                self.refusals += 1
                self.until = max(self.until, now + self.retry_after_s)
                return 429, {"error": {"message": "Rate limit reached for requests"}}, {
                    "Retry-After": f"{self.retry_after_s:g}"}
        return text_completion("fine", model=MODEL)


async def test_a_429_pauses_the_model_for_every_job_and_spends_no_attempt(
    redis_url: str, prefix: str, client: redis.Redis, records: Records, fake: FakeOpenAI,
    workers_for: Any,
) -> None:
    # The SDK tries a request three times itself; then the 429 reaches the limiter.
    provider = ProviderWithRetryAfter(limited=3)
    fake.reply = provider
    await workers_for(settings_for(redis_url, prefix, fake))
    queue = JobQueue(QUEUE, client, prefix=prefix, defaults=QueueDefaults())
    first = await submit(records, queue, {"message": "hi"})
    pause_key = f"agentqueue:{prefix}:rl:model:openai:{MODEL}:paused"

    async def paused() -> bool:
        return bool(await client.exists(pause_key))

    await eventually(paused, what="the model to be paused")
    # Submitted during the pause: it waits for it instead of meeting a 429 of its own.
    second = await submit(records, queue, {"message": "yo"})
    for job_id in (first, second):
        record = await completed(records, job_id)
        assert record.attempts_made == 1  # the 429 spent no attempt
        assert record.result["content"] == "fine"
    assert provider.refusals == 3
