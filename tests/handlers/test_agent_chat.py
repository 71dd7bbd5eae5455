"""The `chat` and `batch` handlers run by a real worker on a real Redis, against a local server
speaking the OpenAI wire protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import WorkerRuntime
from agentqueue.handlers.agent_chat import BATCH, CHAT
from agentqueue.services import build_workers
from tests.support.fake_openai import FakeOpenAI, last_user_content, text_completion
from tests.support.waiting import eventually


def answer_or_refuse(request: dict[str, Any]) -> Any:
    user = last_user_content(request)
    if user == "explode":
        return 400, {"error": {"message": "this request can never succeed"}}
    seen = len(request["messages"])
    return text_completion(f"answer to {user} (saw {seen} messages)")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answer_or_refuse).running() as server:
        yield server


@pytest.fixture
async def queue(client: redis.Redis, prefix: str) -> JobQueue:
    return JobQueue("agent", client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))


@pytest.fixture
async def worker(
    redis_url: str, prefix: str, client: redis.Redis, fake: FakeOpenAI
) -> AsyncIterator[WorkerRuntime]:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, QUEUE_PREFIX=prefix, OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="m", AGENT_QUEUE_NAME="agent",
        QUEUE_CONCURRENCY="2", QUEUE_LOCK_DURATION_MS="2000",
    )
    group = build_workers(settings, redis_url, ["agent"])
    await group.start()
    yield group.workers[0]
    await group.stop(0)


async def finished(queue: JobQueue, job_id: str) -> Any:
    async def probe() -> Any:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(probe, what=f"job {job_id} to finish")


async def test_one_failing_message_does_not_lose_the_others(queue, worker) -> None:
    job_id = await queue.add(BATCH, {"messages": [
        {"message": "first"}, {"message": "explode"}, {"message": "third"},
    ]})
    view = await finished(queue, job_id)
    assert view.state == "completed" and view.progress == 100
    results = view.result["results"]
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["response"].startswith("answer to first")
    assert results[2]["response"].startswith("answer to third")
    assert "can never succeed" in results[1]["error"]
    assert (view.result["succeeded"], view.result["failed"]) == (2, 1)


async def test_a_request_that_can_never_succeed_fails_without_retry(queue, worker, fake) -> None:
    view = await finished(queue, await queue.add(CHAT, {"message": "explode", "sessionId": "s"}))
    assert view.state == "failed" and view.attempts_made == 1
    assert "can never succeed" in view.failed_reason and fake.count() == 1


async def test_session_turns_reach_the_model_unless_history_is_given(queue, worker) -> None:
    first = await finished(queue, await queue.add(CHAT, {"message": "one", "sessionId": "s1"}))
    assert first.result["response"] == "answer to one (saw 1 messages)"
    second = await finished(queue, await queue.add(CHAT, {"message": "two", "sessionId": "s1"}))
    # the two earlier turns and the new message
    assert second.result["response"] == "answer to two (saw 3 messages)"
    explicit = await finished(queue, await queue.add(CHAT, {
        "message": "three", "sessionId": "s1",
        "conversationHistory": [{"role": "user", "content": "only this"}],
    }))
    assert explicit.result["response"] == "answer to three (saw 2 messages)"
    assert explicit.result["usage"]["inputTokens"] == 10
    assert explicit.result["usage"]["outputTokens"] == 5
