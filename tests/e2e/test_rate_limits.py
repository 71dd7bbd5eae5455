"""Rate limits and budgets as a user meets them, with real processes: `agentqueue api`, two
`agentqueue worker` processes and `agentqueue serve`, one real Redis.

- seed 002's 100 jobs per minute on a queue holds across two worker processes: a window runs
  100 jobs, the rest wait queued (not failed, no attempt spent) and run in the next window;
- limits change at run time over HTTP, and the queue's limit is BullMQ's own (Node sees it);
- an organization's daily token budget stops its running agent at its next provider call, then
  refuses its next job with 402 naming the budget, and its usage shows what is left.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.processes import agentqueue, free_port
from tests.support.waiting import eventually

JWT_SECRET = "test-secret-with-enough-length-for-hs256"
QUEUE = "ai-jobs"


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    yield {
        "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PORT": str(free_port()),
        "AGENTQUEUE_DATA_DIR": str(tmp_path / "data"), "AI_PROVIDER": "builtin",
        "QUEUE_KEEP_COMPLETED": "1000",
    }
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def test_a_queue_limit_of_100_a_minute_holds_across_two_worker_processes(
    env: dict[str, str], tmp_path: Path, redis_url: str
) -> None:
    env["QUEUE_RATE_LIMITS"] = '{"ai-jobs": {"max": 100, "duration": 60000}}'
    prefix = env["QUEUE_PREFIX"]
    conn = connect(redis_url)
    keys = {name: f"{prefix}:{QUEUE}:{name}" for name in
            ("completed", "failed", "wait", "prioritized", "limiter", "meta")}

    async def count(name: str) -> int:
        key = keys[name]
        return int(await (conn.llen(key) if name == "wait" else conn.zcard(key)))

    with agentqueue("api", env, tmp_path / "api.log") as api:
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            for n in range(130):
                answer = await http.post("/v1/jobs/sentiment", json={"text": f"good day {n}"})
                assert answer.status_code == 201, answer.text
            with agentqueue("worker", env, tmp_path / "worker-1.log") as one, \
                    agentqueue("worker", env, tmp_path / "worker-2.log") as two:
                async def hundred_done() -> bool:
                    return await count("completed") >= 100

                await eventually(hundred_done, timeout=60, what="100 jobs to complete")
                # Both processes went on asking for jobs, and both were told to wait.
                for worker in (one, two):
                    await worker.wait_log("Queue 'ai-jobs' is rate limited", timeout=30)
                assert await count("completed") == 100
                assert await count("failed") == 0
                assert await count("wait") + await count("prioritized") == 30  # still queued
                assert int(await conn.get(keys["limiter"])) == 100  # this window's count

                # The window ends (as its key expires after the minute): the next one runs the
                # 30 that waited, each on its first attempt.
                await conn.delete(keys["limiter"])

                async def all_done() -> bool:
                    return await count("completed") == 130

                await eventually(all_done, timeout=60, what="the waiting 30 to complete")
                assert await count("failed") == 0
                assert int(await conn.get(keys["limiter"])) == 30

            # Waiting spent no attempt: every job ran once, on its first.
            async with conn.pipeline(transaction=False) as pipe:
                for job_id in range(1, 131):
                    pipe.hget(f"{prefix}:{QUEUE}:{job_id}", "atm")
                assert set(await pipe.execute()) == {"1"}

            # Changed at run time, for every process, in BullMQ's own place.
            changed = await http.patch("/api/admin/limits", json={
                "queues": {QUEUE: {"max": 5, "duration": 1000}}})
            assert changed.status_code == 200, changed.text
            assert changed.json()["queues"][QUEUE] == {"max": 5, "duration": 1000}
            assert await conn.hmget(keys["meta"], "max", "duration") == ["5", "1000"]
            refused = await http.patch("/api/admin/limits", json={"queues": {QUEUE: {"max": 0}}})
            assert refused.status_code == 400, refused.text
            lifted = await http.patch("/api/admin/limits", json={"queues": {QUEUE: None}})
            assert QUEUE not in lifted.json()["queues"]
            assert await conn.hmget(keys["meta"], "max", "duration") == [None, None]
    await conn.aclose()


def as_member(base_url: str, user: str, org: str) -> httpx.AsyncClient:
    claims = {"sub": user, "org": org, "role": "user", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    return httpx.AsyncClient(base_url=base_url, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


async def test_a_spent_budget_stops_the_running_agent_and_refuses_the_next_job(
    env: dict[str, str], tmp_path: Path, fake: FakeOpenAI
) -> None:
    env.update({"JWT_SECRET": JWT_SECRET, "AI_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test",
                "OPENAI_BASE_URL": fake.base_url, "ORG_BUDGET": '{"dailyTokens": 100}'})
    # The agent's first call spends 120 tokens and asks for a tool; its next call would be
    # over acme's 100 a day.
    fake.script(
        completion(tool_calls=[function_call("c1", "calculator", {"expression": "6*7"})],
                   prompt_tokens=90, completion_tokens=30, model="gpt-4o-mini"),
        text_completion("42", model="gpt-4o-mini"),
    )
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        async with as_member(serve.base_url, "alice", "acme") as alice, \
                as_member(serve.base_url, "carol", "globex") as carol:
            before = (await alice.get("/api/usage/budget")).json()
            assert before["daily"]["tokens"] == {"limit": 100, "used": 0, "remaining": 100}

            created = await alice.post("/agent/queue/chat", json={"message": "What is 6*7?"})
            assert created.status_code == 201, created.text
            job_id = created.json()["jobId"]

            async def failed() -> Any:
                job = (await alice.get(f"/agent/queue/job/{job_id}")).json()["job"]
                return job if job["status"] in ("failed", "completed") else None

            job = await eventually(failed, timeout=60, what="the agent's job to end")
            assert job["status"] == "failed", job
            stopped = ("stopped: organization acme is over its daily token budget "
                       "(120 of 100 tokens used)")
            assert job["failedReason"] == stopped
            assert fake.count() == 1  # stopped before its second call
            assert job["attemptsMade"] == 1  # not retried: retrying cannot help

            refused = await alice.post("/agent/queue/chat", json={"message": "And 7*8?"})
            assert refused.status_code == 402, refused.text
            assert "daily token budget" in refused.json()["message"]
            after = (await alice.get("/api/usage/budget")).json()
            assert after["daily"]["tokens"] == {"limit": 100, "used": 120, "remaining": 0}
            # Another organization's budget is its own.
            assert (await carol.post("/agent/queue/chat",
                                     json={"message": "hi"})).status_code == 201
            assert (await carol.get("/api/usage/budget",
                                    params={"organizationId": "acme"})).status_code == 403
