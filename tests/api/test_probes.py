"""`/livez` and `/readyz`: what an orchestrator asks before it sends traffic or restarts."""

from __future__ import annotations

from pathlib import Path

from tests.support.app_api import in_process_api
from tests.support.processes import free_port


async def test_ready_when_redis_and_the_database_answer(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path) as (http, _):
        assert (await http.get("/livez")).json() == {"status": "alive"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "redis": {"status": "up"},
                                "database": {"status": "up"}}


async def test_not_ready_but_alive_while_redis_is_away(prefix: str, tmp_path: Path) -> None:
    async with in_process_api(f"redis://127.0.0.1:{free_port()}/0", prefix,
                              tmp_path) as (http, _):
        assert (await http.get("/livez")).status_code == 200  # no restart for this
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not ready" and body["database"] == {"status": "up"}
        assert body["redis"]["status"] == "down" and "Error" in body["redis"]["error"]
