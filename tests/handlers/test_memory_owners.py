"""Conversation memory belongs to the job's owner: the same session (or conversation) id sent by
someone else is a new, empty conversation, and theirs is left untouched.

Real workers with records (SQLite) on a real Redis; jobs get their owner from their record, as
the API writes it, and a local server speaking the OpenAI wire protocol says how many messages
the model saw.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.jobs import JobView
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.handlers.sessions import SessionStore
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner
from agentqueue.services import build_workers
from tests.support.fake_openai import FakeOpenAI, last_user_content, text_completion
from tests.support.waiting import eventually

CHAT_QUEUE, TASKS_QUEUE = "agent-queue", "ai-tasks"
ALICE = JobOwner(user_id="alice", org_id="acme")
# The same user id in another organization, and without one (a JWT without `org`): others.
ALICE_ELSEWHERE = JobOwner(user_id="alice", org_id="globex")
ALICE_NO_ORG = JobOwner(user_id="alice")
CAROL = JobOwner(user_id="carol", org_id="globex")


def saw(request: dict[str, Any]) -> Any:
    user = last_user_content(request)
    return text_completion(f"{user}: saw {len(request['messages'])} messages")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(saw).running() as server:
        yield server


@pytest.fixture
async def workers(
    redis_url: str, prefix: str, fake: FakeOpenAI, records: Records
) -> AsyncIterator[None]:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, QUEUE_PREFIX=prefix, OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="m", QUEUE_LOCK_DURATION_MS="2000",
    )
    group = build_workers(settings, redis_url, [CHAT_QUEUE, TASKS_QUEUE], records=records)
    await group.start()
    yield
    await group.stop(0)


@pytest.fixture
def queues(client: redis.Redis, prefix: str) -> dict[str, JobQueue]:
    return {
        name: JobQueue(name, client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))
        for name in (CHAT_QUEUE, TASKS_QUEUE)
    }


async def run_as(
    owner: JobOwner, queue: JobQueue, records: Records, name: str, data: dict[str, Any]
) -> JobView:
    """A job submitted as the API does: its record (with the owner) first, then the job."""
    job_id = uuid.uuid4().hex
    await records.create_job(queue=queue.name, job_id=job_id, type=name, data=data, owner=owner)
    await queue.add(name, data, jobId=job_id)

    async def finished() -> JobView | None:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    view = await eventually(finished, what=f"{name} job {job_id} to finish")
    assert view.state == "completed", view.failed_reason
    return view


async def test_a_chat_session_id_is_its_owners_alone(workers, queues, records) -> None:
    agent = queues[CHAT_QUEUE]

    async def chat(owner: JobOwner, message: str) -> str:
        view = await run_as(owner, agent, records, "chat",
                            {"message": message, "sessionId": "session_shared"})
        response: str = view.result["response"]
        return response

    assert await chat(ALICE, "one") == "one: saw 1 messages"
    # Someone else's session id: a new, empty session, whoever they are.
    for other in (CAROL, ALICE_ELSEWHERE, ALICE_NO_ORG):
        assert await chat(other, "intruder") == "intruder: saw 1 messages"
    # A batch item naming the same session is no way in either.
    batch = await run_as(CAROL, agent, records, "batch",
                         {"messages": [{"message": "batched", "sessionId": "session_shared"}]})
    assert batch.result["results"][0]["response"] == "batched: saw 3 messages"  # carol's own
    # Alice's session has her two turns only, nothing the others said.
    assert await chat(ALICE, "two") == "two: saw 3 messages"


async def test_a_conversation_id_is_its_owners_alone(workers, queues, records) -> None:
    tasks = queues[TASKS_QUEUE]

    async def complete(owner: JobOwner, message: str) -> str:
        view = await run_as(owner, tasks, records, "generate-completion",
                            {"conversationId": "c-1", "message": message})
        content: str = view.result["content"]
        return content

    assert await complete(ALICE, "hello") == "hello: saw 1 messages"
    assert await complete(CAROL, "peek") == "peek: saw 1 messages"
    assert await complete(ALICE_NO_ORG, "peek") == "peek: saw 1 messages"
    assert await complete(ALICE, "again") == "again: saw 3 messages"


async def test_jobs_added_straight_to_redis_keep_sharing_the_ownerless_memory(
    workers, queues, records, client: redis.Redis, prefix: str
) -> None:
    agent = queues[CHAT_QUEUE]
    # A session a plain BullMQ producer's job started before such jobs got records.
    sessions = SessionStore(client, prefix=prefix)
    await sessions.append_once(None, "session_node", "earlier",
                               {"role": "user", "content": "zero"},
                               {"role": "assistant", "content": "zero: saw 1 messages"})

    job_id = await agent.add("chat", {"message": "one", "sessionId": "session_node"})

    async def finished() -> JobView | None:
        view = await agent.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    view = await eventually(finished, what="the plain chat job to finish")
    assert view.result["response"] == "one: saw 3 messages", view.failed_reason
    record = await records.get(CHAT_QUEUE, job_id)
    assert record is not None and record.owner == NO_OWNER  # recorded, owned by nobody
