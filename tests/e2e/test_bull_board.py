"""A real Bull Board (npm `@bull-board/api` + `@bull-board/express`, started here) over our
Redis shows our queues and jobs in the states our workers left them, and our workers as the
queue's workers. Needs node and npm (packages from the npm registry)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import agentqueue as aq
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.processes import free_port
from tests.support.waiting import eventually
from tests.support.workers import app_worker

BOARD_DIR = Path(__file__).parent / "bullboard"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs node and npm"
)


class Number(BaseModel):
    n: int


@pytest.fixture(scope="module")
def board_modules() -> Path:
    if not (BOARD_DIR / "node_modules" / "@bull-board" / "express").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=BOARD_DIR, check=True, timeout=600, capture_output=True)
    return BOARD_DIR / "node_modules"


@pytest.fixture
async def app(redis_url: str, tmp_path: Path) -> AsyncIterator[aq.App]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    app = aq.App(settings=Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,  # type: ignore[call-arg]
                                   AGENTQUEUE_DATA_DIR=tmp_path / "data"))

    @app.job("square", queue="board", attempts=1)
    async def square(ctx: aq.JobContext, data: Number) -> int:
        return data.n * data.n

    @app.job("refuse", queue="board", attempts=1)
    async def refuse(ctx: aq.JobContext, data: Number) -> None:
        raise ValueError(f"{data.n} is not welcome")

    yield app
    await app.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def test_bull_board_shows_our_queue_jobs_and_workers(
    board_modules: Path, app: aq.App, redis_url: str
) -> None:
    port = free_port()
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": app.settings.queue_prefix,
           "PORT": str(port), "PATH": _path()}
    board = await asyncio.create_subprocess_exec(
        "node", "board.mjs", "board", cwd=BOARD_DIR, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert board.stdout is not None
        assert (await asyncio.wait_for(board.stdout.readline(), 60)).strip() == b"ready"
        async with app_worker(app, "board"):
            done = [await app.enqueue("square", {"n": n}) for n in (3, 4)]
            bad = await app.enqueue("refuse", {"n": 7})
            for job in done:
                await job.wait(timeout=30)
            with pytest.raises(aq.JobFailed):
                await bad.wait(timeout=30)
            later = await app.enqueue("square", {"n": 5}, delay_ms=600_000)
            api = f"http://127.0.0.1:{port}/admin/queues/api"
            async with httpx.AsyncClient(base_url=api, timeout=30) as http:

                async def board_queue(status: str) -> dict[str, Any]:
                    found = (await http.get("/queues", params={
                        "activeQueue": "board", "status": status, "page": 1,
                        "jobsPerPage": 10})).json()
                    [queue] = [q for q in found["queues"] if q["name"] == "board"]
                    return queue  # type: ignore[no-any-return]

                queue = await board_queue("completed")
                assert {k: queue["counts"][k] for k in ("completed", "failed", "delayed")} == {
                    "completed": 2, "failed": 1, "delayed": 1}
                assert sorted(j["returnValue"] for j in queue["jobs"]) == [9, 16]
                [failed] = (await board_queue("failed"))["jobs"]
                assert (failed["id"], failed["name"]) == (bad.id, "refuse")
                assert "7 is not welcome" in failed["failedReason"]
                [waiting] = (await board_queue("delayed"))["jobs"]
                assert waiting["id"] == later.id and waiting["data"] == {"n": 5}

                async def workers() -> list[Any] | None:
                    found: list[Any] | None = (
                        await http.get("/queues/board/workers")).json()["workers"]
                    return found or None

                assert len(await eventually(workers, what="our worker on the board")) == 1
    finally:
        if board.returncode is None:
            board.kill()
        await board.wait()


def _path() -> str:
    import os

    return os.environ.get("PATH", "")
