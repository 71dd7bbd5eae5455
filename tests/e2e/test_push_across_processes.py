"""Push across machines: a client on API process A (on its gateway's own port, GATEWAY_PORT)
hears a job created through API process B and run by a separate worker process, with its
streamed text: events travel through Redis, not through any process's memory."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import agentqueue, free_port
from tests.support.push import ANSWER, Pushed, answering_fake, deltas_text, sse, user_keys


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    with answering_fake().running() as server:
        server.pace = 0.005
        yield server


@pytest.fixture
async def env(redis_url: str, fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    yield {
        "AGENTQUEUE_DATA_DIR": str(tmp_path / "data"),  # the records, shared by the processes
        "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "AI_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test-not-a-real-key", "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_MODEL": "fake-model",
    }
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def test_a_client_on_one_api_hears_a_job_made_on_another_and_run_elsewhere(
        env: dict[str, str], tmp_path: Path) -> None:
    keys = user_keys(env)
    gateway_port = free_port()
    a_env = {**env, "PORT": str(free_port()), "GATEWAY_PORT": str(gateway_port)}
    b_env = {**env, "PORT": str(free_port())}
    with agentqueue("api", a_env, tmp_path / "a.log") as api_a, \
            agentqueue("api", b_env, tmp_path / "b.log") as api_b, \
            agentqueue("worker", env, tmp_path / "worker.log"):
        await api_a.wait_healthy()
        await api_b.wait_healthy()
        ws_url = f"ws://127.0.0.1:{gateway_port}/jobs?token={keys['alice']}"
        async with websockets.connect(ws_url) as ws, \
                httpx.AsyncClient(base_url=api_a.base_url, timeout=30, headers={
                    "Authorization": f"Bearer {keys['alice']}"}) as on_a, \
                sse(on_a, "/api/jobs/events") as on_a_sse, \
                httpx.AsyncClient(base_url=api_b.base_url, timeout=30, headers={
                    "Authorization": f"Bearer {keys['alice']}"}) as on_b:
            created = await on_b.post("/api/jobs", json={
                "type": "generate-completion", "data": {"message": "across"}})
            assert created.status_code == 201, created.text
            job = created.json()["id"]
            await ws.send(json.dumps({"event": "subscribe-job", "data": job}))
            frames: list[dict[str, Any]] = []
            while not (frames and frames[-1]["event"] == "job-completed"):
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
            told: list[Pushed] = []
            async for event in on_a_sse:
                told.append(event)
                if event.event == "job-completed":
                    break
    assert frames[0]["event"] == "job-created" and frames[0]["data"]["id"] == job
    assert frames[-1]["data"]["result"]["content"] == ANSWER
    assert [e.event for e in told][0] == "job-created"
    assert told[-1].data["result"]["content"] == ANSWER
    assert deltas_text(told) == ANSWER
