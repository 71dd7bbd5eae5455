"""Node BullMQ and agentqueue share queues: a Node producer is answered by our worker, and a
Node worker answers jobs our API accepted. Needs node and npm (packages from the npm registry)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.processes import agentqueue, free_port
from tests.support.waiting import eventually

NODE_DIR = Path(__file__).with_name("node")

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs node and npm"
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if not (NODE_DIR / "node_modules" / "bullmq").is_dir():
        # `npm install` keeps to the lock file; `npm ci` refuses it for lacking other
        # platforms' optional packages.
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_DIR, check=True, timeout=600, capture_output=True,
        )
    return NODE_DIR / "node_modules"


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    yield {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PORT": str(free_port()),
           "AGENTQUEUE_DATA_DIR": str(tmp_path / "data")}
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def run_node(script: str, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node", script, *args, cwd=NODE_DIR, env={**env, "PATH": _path()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _until_line(stream: asyncio.StreamReader, wanted: bytes) -> None:
    while (line := await stream.readline()) and line.strip() != wanted:
        pass
    assert line, f"the Node worker exited before printing {wanted!r}"


def _path() -> str:
    import os

    return os.environ.get("PATH", "")


async def test_node_producer_is_answered_by_our_worker(
    node_modules: Path, env: dict[str, str], tmp_path: Path
) -> None:
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        producer = await run_node("producer.mjs", env, "Calculate 100000 / 0.10")
        out, err = await asyncio.wait_for(producer.communicate(), 90)
        assert producer.returncode == 0, err.decode()
        answer = json.loads(out.decode().strip().splitlines()[-1])
        assert answer["state"] == "completed"
        assert "1,000,000" in answer["result"]["response"]
        assert answer["result"]["provider"] == "builtin"


async def test_node_worker_answers_a_job_our_api_accepted(
    node_modules: Path, env: dict[str, str], tmp_path: Path
) -> None:
    with agentqueue("api", env, tmp_path / "api.log") as api:
        await api.wait_healthy()
        worker = await run_node("worker.mjs", env)
        try:
            assert worker.stdout is not None
            await asyncio.wait_for(_until_line(worker.stdout, b"ready"), 60)
            async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
                queued = await http.post("/agent/queue/chat", json={"message": "hello node"})
                job_id = queued.json()["jobId"]

                async def completed() -> dict | None:  # type: ignore[type-arg]
                    job = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
                    return job if job["status"] == "completed" else None

                job = await eventually(completed, what="the Node worker to finish the job")
            assert job["result"]["response"] == "node heard: hello node"
            assert job["result"]["sessionId"] == job["data"]["sessionId"]
            assert job["progress"] == 100 or job["progress"] == 50
        finally:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()
