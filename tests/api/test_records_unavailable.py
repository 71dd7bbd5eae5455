"""A records database that cannot serve a request answers 503 with Retry-After, promptly.

Under overload the connection pool runs dry; found by the chaos bench: requests waited 30 s for
a connection and then got a 500 "internal error".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from agentqueue.api.app import create_app
from agentqueue.config import Settings
from agentqueue.services import Services

LOCAL = ("127.0.0.1", 50000)


@contextlib.asynccontextmanager
async def one_connection_api(
    redis_url: str, prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, Services]]:
    """The API (no worker) with a records pool of one connection that waits 0.2 s for it."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path,
        DATABASE_POOL_SIZE=1, DATABASE_POOL_OVERFLOW=0, DATABASE_POOL_TIMEOUT_SECONDS=0.2,
    )
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        yield app, app.state.services


async def test_an_exhausted_records_pool_answers_503_with_retry_after(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with one_connection_api(redis_url, prefix, tmp_path) as (app, services):
        transport = httpx.ASGITransport(app=app, client=LOCAL)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test", timeout=20) as http,
            services.records.engine.connect(),  # the pool's only connection, held
        ):
            answer = await http.post("/agent/queue/chat", json={"message": "hello"})
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "1"
            assert answer.json() == {
                "success": False, "message": "records database busy or unavailable; try again "
                "shortly",
            }
        # The connection is back: the same request is accepted.
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.post("/agent/queue/chat", json={"message": "hi"})).status_code == 201


async def test_a_batch_of_submissions_that_cannot_commit_answers_each_503_and_queues_none(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with one_connection_api(redis_url, prefix, tmp_path) as (app, services):
        transport = httpx.ASGITransport(app=app, client=LOCAL)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=20) as http:
            async with services.records.engine.connect():  # the pool's only connection, held
                answers = await asyncio.gather(*(
                    http.post("/agent/queue/chat", json={"message": f"hello {n}"})
                    for n in range(12)))
            assert [a.status_code for a in answers] == [503] * 12
            # Not accepted, so nothing of them is left: no job in Redis, no record.
            counts = await services.agent_queue.counts()
            assert sum(counts.values()) == 0
            assert (await services.records.list_jobs())[1] == 0
            # Many accepted at once: each has its record and its job.
            answers = await asyncio.gather(*(
                http.post("/agent/queue/chat", json={"message": f"hi {n}"}) for n in range(12)))
            assert [a.status_code for a in answers] == [201] * 12
            for answer in answers:
                job_id = answer.json()["jobId"]
                assert await services.records.get(services.agent_queue.name, job_id) is not None
                assert await services.agent_queue.get(job_id) is not None
