"""Node BullMQ and agentqueue share queues: a Node producer is answered by our worker, and a
Node worker answers jobs our API accepted; the Python API waits on and hears jobs Node workers
ran, and Node `QueueEvents` hears ours. Needs node and npm (packages from the npm registry)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import agentqueue as aq
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.worker import WorkerRuntime
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


# -- the Python API and Node BullMQ on the same queue ------------------------------------------


class Numbers(BaseModel):
    n: int


@pytest.fixture
async def app(env: dict[str, str]) -> AsyncIterator[aq.App]:
    app = aq.App(settings=Settings(
        REDIS_URL=env["REDIS_URL"], QUEUE_PREFIX=env["QUEUE_PREFIX"],
        AGENTQUEUE_DATA_DIR=env["AGENTQUEUE_DATA_DIR"]))

    @app.job("double", queue="interop", attempts=1)
    async def double(ctx: aq.JobContext, data: Numbers) -> dict[str, Any]:
        await ctx.progress(1, 2, "python half way")
        return {"doubled": data.n * 2, "by": "python"}

    yield app
    await app.close()


@pytest.fixture
async def python_worker(app: aq.App, env: dict[str, str]) -> AsyncIterator[None]:
    """Our worker on the `interop` queue, in this process."""
    runtime = WorkerRuntime("interop", env["REDIS_URL"], prefix=env["QUEUE_PREFIX"])
    for definition in app.definitions.values():
        runtime.register(definition.name, definition.run)
    await runtime.start()
    yield
    await runtime.stop(5)


@asynccontextmanager
async def node(script: str, env: dict[str, str], *args: str
               ) -> AsyncIterator[asyncio.subprocess.Process]:
    """A Node script that prints "ready" once listening; killed on the way out if still on."""
    process = await run_node(script, env, *args)
    try:
        assert process.stdout is not None
        await asyncio.wait_for(_until_line(process.stdout, b"ready"), 60)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_python_wait_on_a_job_a_node_worker_ran(
    node_modules: Path, env: dict[str, str], app: aq.App
) -> None:
    async with node("app_worker.mjs", env, "interop") as worker:
        job = await app.enqueue("double", {"n": 21})
        assert await job.wait(timeout=60) == {"doubled": 42, "by": "node"}
        assert await job.status() == "completed"
        await asyncio.wait_for(worker.wait(), 30)  # it exits after its one job
        assert worker.returncode == 0


async def test_node_queue_events_hear_a_job_our_worker_ran(
    node_modules: Path, env: dict[str, str], app: aq.App, python_worker: None
) -> None:
    job = await app.enqueue("double", {"n": 5})
    async with node("listener.mjs", env, "interop", job.id) as listener:
        assert listener.stdout is not None
        out = await asyncio.wait_for(listener.stdout.read(), 60)
        await asyncio.wait_for(listener.wait(), 30)
    heard = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    mine = [e for e in heard if e["jobId"] == job.id]
    [completed] = [e for e in mine if e["event"] == "completed"]
    result = completed["returnvalue"]
    assert (json.loads(result) if isinstance(result, str) else result) == {
        "doubled": 10, "by": "python"}
    [progress] = [e for e in mine if e["event"] == "progress"]
    assert progress["data"] == {"current": 1, "total": 2, "percent": 50.0,
                                "message": "python half way"}


async def test_our_queue_events_hear_a_job_a_node_worker_ran(
    node_modules: Path, env: dict[str, str], app: aq.App
) -> None:
    queue = app.queue("interop")
    heard: list[aq.QueueEvent] = []

    async def listen() -> None:
        async for event in queue.events(after="0"):  # a new queue: its whole stream
            heard.append(event)
            if event.event == "completed":
                return

    listening = asyncio.create_task(listen())
    async with node("app_worker.mjs", env, "interop"):
        job = await app.enqueue("double", {"n": 4})
        async with asyncio.timeout(60):
            await listening
    mine = [e for e in heard if e.job_id == job.id]
    assert [e.event for e in mine if e.event in ("active", "progress", "completed")] == [
        "active", "progress", "completed"]
    assert mine[-1].returnvalue == {"doubled": 8, "by": "node"}
    [progress] = [e for e in mine if e.event == "progress"]
    assert progress.progress["message"] == "node half way"


async def test_node_get_workers_lists_each_of_our_worker_processes_once(
    node_modules: Path, env: dict[str, str], tmp_path: Path
) -> None:
    # As a Node worker is: by its blocking connection, named `<prefix>:<base64 queue>:w:<name>`
    # (what Bull Board and Taskforce show as the queue's workers).
    with agentqueue("worker", {**env, "WORKER_PROCESSES": "2"}, tmp_path / "worker.log"):

        async def listed() -> dict | None:  # type: ignore[type-arg]
            lister = await run_node("workers.mjs", env, "agent-queue")
            out, err = await asyncio.wait_for(lister.communicate(), 60)
            assert lister.returncode == 0, err.decode()
            found: dict = json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[type-arg]
            return found if found["count"] == 2 else None

        found = await eventually(listed, timeout=60, what="Node's getWorkers to list two")
    encoded = base64.b64encode(b"agent-queue").decode()
    assert found["names"] == [f"{env['QUEUE_PREFIX']}:{encoded}:w:agentqueue"] * 2
