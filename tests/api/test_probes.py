"""`/livez` and `/readyz`: what an orchestrator asks before it sends traffic or restarts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from agentqueue.api.app import create_app
from agentqueue.config import Settings
from tests.support.processes import free_port

LOCAL = ("127.0.0.1", 50000)


@contextlib.asynccontextmanager
async def api(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=LOCAL)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_ready_when_redis_and_the_database_answer(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with api(redis_url, prefix, tmp_path) as http:
        assert (await http.get("/livez")).json() == {"status": "alive"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "redis": {"status": "up"},
                                "database": {"status": "up"}}


async def test_not_ready_but_alive_while_redis_is_away(prefix: str, tmp_path: Path) -> None:
    async with api(f"redis://127.0.0.1:{free_port()}/0", prefix, tmp_path) as http:
        assert (await http.get("/livez")).status_code == 200  # no restart for this
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not ready" and body["database"] == {"status": "up"}
        assert body["redis"]["status"] == "down" and "Error" in body["redis"]["error"]
