"""A job added by a plain BullMQ producer (bypassing our APIs) gets its record when a worker
takes it: admins list it like any other job, and nobody else sees it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from bullmq import Queue

from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

JWT_SECRET = "test-secret-with-enough-length-for-hs256"


@pytest.fixture
async def service(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    env = {**serve_env(tmp_path / "data", JWT_SECRET=JWT_SECRET), "REDIS_URL": redis_url}
    keys = {
        "root": create_key(env, "--user", "root", "--org", "ops", "--admin"),
        "alice": create_key(env, "--user", "alice", "--org", "acme"),
    }
    with agentqueue("serve", env, tmp_path / "serve.log") as proc:
        await proc.wait_healthy()
        yield {"proc": proc, "keys": keys, "env": env}
    await delete_service_keys(env)


def client(service: dict[str, Any], bearer: str) -> httpx.AsyncClient:
    proc: AgentqueueProcess = service["proc"]
    return httpx.AsyncClient(base_url=proc.base_url, timeout=30,
                             headers={"Authorization": f"Bearer {bearer}"})


def orgless_user_token() -> str:
    claims = {"sub": "dora", "role": "user", "exp": int(time.time()) + 600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def add_with_plain_bullmq(env: dict[str, str]) -> str:
    queue = Queue("agent-queue", {"connection": env["REDIS_URL"], "prefix": env["QUEUE_PREFIX"]})
    try:
        job = await queue.add("chat", {"message": "Calculate 100000 / 0.10"}, {"attempts": 2})
    finally:
        await queue.close()
    return str(job.id)


async def test_a_plain_bullmq_job_is_listed_for_admins_only(service: dict[str, Any]) -> None:
    job_id = await add_with_plain_bullmq(service["env"])

    async with client(service, service["keys"]["root"]) as admin:
        async def completed_in_api_jobs() -> dict[str, Any] | None:
            listed = (await admin.get("/api/jobs", params={"type": "chat"})).json()
            return next((j for j in listed["jobs"] if j["id"] == f"agent-queue:{job_id}"
                         and j["status"] == "completed"), None)

        job = await eventually(completed_in_api_jobs, timeout=60,
                               interval=0.5, what="the plain BullMQ job to be listed as completed")
        assert "1,000,000" in job["result"]["response"]
        assert job["maxAttempts"] == 2 and job["userId"] == "" and job["organizationId"] is None

        agent_jobs = (await admin.get("/agent/queue/jobs")).json()["jobs"]
        assert [j["status"] for j in agent_jobs if j["id"] == job_id] == ["completed"]

    for bearer in (service["keys"]["alice"], orgless_user_token()):
        async with client(service, bearer) as someone:
            api_jobs = (await someone.get("/api/jobs")).json()["jobs"]
            assert f"agent-queue:{job_id}" not in [j["id"] for j in api_jobs]
            agent_jobs = (await someone.get("/agent/queue/jobs")).json()["jobs"]
            assert job_id not in [j["id"] for j in agent_jobs]
            assert (await someone.get(f"/agent/queue/job/{job_id}")).status_code == 404
