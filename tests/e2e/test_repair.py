"""The repair service brings records back in line with Redis after crashes."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentqueue.config import Settings
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.connection import connect
from agentqueue.engine.queue import JobQueue
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from tests.conftest import delete_prefix
from tests.support.processes import AgentqueueProcess, agentqueue, free_port
from tests.support.waiting import eventually


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    yield {
        "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PORT": str(free_port()),
        "AGENTQUEUE_DATA_DIR": str(tmp_path / "data"),
        "REPAIR_INTERVAL_SECONDS": "0.3", "REPAIR_SETTLE_SECONDS": "0.5",
    }
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def v1_job(http: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
        return job if job["status"] == status else None

    return await eventually(probe, timeout=30, what=f"job {job_id} {status}")


async def test_a_job_finished_by_a_worker_killed_before_its_record_write_is_repaired(
    env: dict[str, str], tmp_path: Path
) -> None:
    # The worker writes its records to a database of its own, as good as never: the state a
    # worker SIGKILLed between finishing a job in Redis and writing the record leaves behind.
    # Its maintenance is off: repairing that other database, it could take the repair lease
    # and keep the API's repair off ours until the lease ran out after the kill.
    lost = {**env, "AGENTQUEUE_DATA_DIR": str(tmp_path / "elsewhere"),
            "MAINTENANCE_ENABLED": "false"}
    with agentqueue("api", env, tmp_path / "api.log") as api:
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            job = (await http.post("/v1/jobs/sentiment", json={"text": "lovely"})).json()
            redis_queue = JobQueue("ai-jobs", connect(env["REDIS_URL"]),
                                   prefix=env["QUEUE_PREFIX"])
            with agentqueue("worker", lost, tmp_path / "worker.log") as worker:

                async def finished_in_redis() -> bool:
                    view = await redis_queue.get(job["id"])
                    return view is not None and view.state == "completed"

                await eventually(finished_in_redis, what="the worker to finish the job")
                worker.signal(signal.SIGKILL)
                worker.wait_exit()
            await redis_queue.close()
            await redis_queue.client.aclose()
            repaired = await v1_job(http, job["id"], "SUCCEEDED")
            assert repaired["output"]["sentiment"] == "positive"


async def test_a_recorded_job_missing_from_redis_is_queued_again(
    env: dict[str, str], tmp_path: Path
) -> None:
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as http:
            await http.post("/v1/admin/queue/pause?queue=ai-jobs")
            job = (await http.post("/v1/jobs/sentiment", json={"text": "awful"})).json()
            # Lose the job from Redis, as a crash between the record and the queue write would.
            redis_queue = JobQueue("ai-jobs", connect(env["REDIS_URL"]),
                                   prefix=env["QUEUE_PREFIX"])
            assert await redis_queue.remove(job["id"])

            async def back_in_redis() -> bool:
                return await redis_queue.get(job["id"]) is not None

            await eventually(back_in_redis, what="the repair service to queue the job again")
            await redis_queue.close()
            await redis_queue.client.aclose()
            await http.post("/v1/admin/queue/resume?queue=ai-jobs")
            done = await v1_job(http, job["id"], "SUCCEEDED")
            assert done["output"]["sentiment"] == "negative"


async def test_a_worker_alone_repairs_a_record_whose_job_redis_lost(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A job recorded and queued, then lost by Redis (as a crash between the two writes
    # leaves it), with no API process running: the worker's maintenance queues it again.
    url = Settings(AGENTQUEUE_DATA_DIR=env["AGENTQUEUE_DATA_DIR"]).records_url
    await upgrade(url)
    records = await Records.connect(url)
    queue = JobQueue("ai-jobs", connect(env["REDIS_URL"]), prefix=env["QUEUE_PREFIX"])
    try:
        job = await JobSubmitter({"ai-jobs": queue}, records).submit(
            queue="ai-jobs", name="sentiment", data={"text": "lovely"},
            owner=JobOwner(user_id="u"))
        assert await queue.remove(job.job_id)
        with agentqueue("worker", env, tmp_path / "worker.log"):

            async def completed() -> bool:
                record = await records.get("ai-jobs", job.job_id)
                assert record is not None
                return record.status == "completed"

            await eventually(completed, timeout=30, what="the worker to repair and run the job")
        record = await records.get("ai-jobs", job.job_id)
        assert record is not None and record.result["sentiment"] == "positive"
    finally:
        await queue.close()
        await queue.client.aclose()
        await records.close()


async def test_when_the_worker_doing_repair_is_killed_another_worker_takes_it_over(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "MAINTENANCE_LEASE_SECONDS": "1"}
    taken = "Maintenance 'repair': this process does it now"
    with agentqueue("worker", env, tmp_path / "a.log") as a, \
            agentqueue("worker", env, tmp_path / "b.log") as b:

        async def holder() -> list[AgentqueueProcess]:
            return [w for w in (a, b) if taken in w.log()]

        holders = await eventually(holder, what="a worker to take the repair duty")
        assert len(holders) == 1
        first = holders[0]
        other = b if first is a else a
        first.signal(signal.SIGKILL)
        first.wait_exit()
        await other.wait_log(taken)

        # And the survivor does repair: a job Redis lost is queued again, and run.
        url = Settings(AGENTQUEUE_DATA_DIR=env["AGENTQUEUE_DATA_DIR"]).records_url
        records = await Records.connect(url)
        queue = JobQueue("ai-jobs", connect(env["REDIS_URL"]), prefix=env["QUEUE_PREFIX"])
        try:
            await queue.pause()  # so that no worker takes the job before Redis "loses" it
            job = await JobSubmitter({"ai-jobs": queue}, records).submit(
                queue="ai-jobs", name="sentiment", data={"text": "lovely"},
                owner=JobOwner(user_id="u"))
            assert await queue.remove(job.job_id)
            await queue.resume()

            async def completed() -> bool:
                record = await records.get("ai-jobs", job.job_id)
                return record is not None and record.status == "completed"

            await eventually(completed, timeout=30, what="the survivor to repair the job")
        finally:
            await queue.close()
            await queue.client.aclose()
            await records.close()
