"""Priority over HTTP: a job given no priority waits its turn behind prioritized ones, every
API reads a waiting prioritized job as waiting, and a priority reads back as it was sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.processes import agentqueue, free_port
from tests.support.waiting import eventually


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    # One job at a time, so the order the worker takes them is the order they run.
    yield {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PORT": str(free_port()),
           "AGENTQUEUE_DATA_DIR": str(tmp_path / "data"), "AI_PROVIDER": "builtin",
           "QUEUE_CONCURRENCY": "1"}
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def chat(http: httpx.AsyncClient, **metadata: Any) -> str:
    body: dict[str, Any] = {"message": "Calculate 2+2"}
    if metadata:
        body["metadata"] = metadata
    answer = await http.post("/agent/queue/chat", json=body)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["jobId"]
    return job_id


async def test_jobs_run_by_priority_whichever_gave_one(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    with agentqueue("api", env, tmp_path / "api.log") as api:  # no worker yet: jobs wait
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            plain = await chat(http)  # first in, no priority
            low = await chat(http, priority="low")
            high = await chat(http, priority="high")

            # Waiting with a priority (BullMQ's "prioritized" set) is waiting to every API.
            for job_id in (plain, low, high):
                job = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
                assert job["status"] == "waiting"
            created = await http.post("/api/jobs", json={
                "type": "sentiment", "data": {"text": "fine"}, "priority": 5})
            assert created.status_code == 201, created.text
            assert created.json()["priority"] == 5 and created.json()["status"] == "pending"
            seed1 = (await http.get(f"/api/jobs/{created.json()['id']}")).json()
            assert seed1["priority"] == 5 and seed1["status"] == "pending"
            ai = (await http.post("/ai/queue", json={"message": "hello"})).json()
            assert (await http.get(f"/ai/jobs/{ai['jobId']}")).json()["state"] == "waiting"
            refused = await http.post(f"/agent/queue/job/{high}/retry")
            assert refused.status_code == 409 and "job is waiting" in refused.json()["message"]

            with agentqueue("worker", env, tmp_path / "worker.log"):
                async def finished() -> dict[str, dict[str, Any]] | None:
                    jobs = {job_id: (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
                            for job_id in (plain, low, high)}
                    done = all(j["status"] == "completed" for j in jobs.values())
                    return jobs if done else None

                jobs = await eventually(finished, timeout=60, what="the three chats to finish")

    def at(job_id: str, stamp: str) -> datetime:
        return datetime.fromisoformat(jobs[job_id][stamp])

    # One at a time: each finished before the next started.
    assert at(high, "finishedAt") <= at(plain, "processedAt")
    assert at(plain, "finishedAt") <= at(low, "processedAt")
