"""Redis Sentinel failover under load: `agentqueue api` and `agentqueue worker` reach the primary
through three Sentinels (REDIS_SENTINELS) that this module starts on loopback, with a replica
beside it. Chats are submitted steadily over HTTP; the primary is killed (SIGKILL) mid-run; the
Sentinels promote the replica; every chat the API answered 201 for completes.

Redis replicates asynchronously: a job the primary took may not have reached the replica when it
dies. REDIS_WAIT_REPLICAS=1 makes the API wait (WAIT) until the replica has each job before it
answers, so an accepted job is on the replica when the failover happens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from agentqueue.engine.connection import connect
from agentqueue.engine.queue import JobQueue, ReplicaWait
from tests.support.processes import agentqueue, free_port
from tests.support.redis_servers import (
    SENTINEL_MASTER,
    SentinelSet,
    needs_redis_server,
    sentinel_set,
)
from tests.support.waiting import eventually

pytestmark = needs_redis_server


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    with sentinel_set(tmp_path_factory.mktemp("sentinel")) as deployment:
        yield deployment


class Submitter:
    """POSTs chats one after another; keeps the ids the API accepted (201)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.accepted: list[str] = []
        self.refused = 0  # 503 or no answer: the client was not told the job was accepted

    async def run(self) -> None:
        n = 0
        while True:
            n += 1
            try:
                answer = await self.http.post("/agent/queue/chat",
                                              json={"message": f"Calculate {n}+1"})
            except httpx.TransportError:
                self.refused += 1
                continue
            if answer.status_code == 201:
                self.accepted.append(answer.json()["jobId"])
            else:
                assert answer.status_code == 503, answer.text
                self.refused += 1
            await asyncio.sleep(0.02)  # a steady stream, not a flood

    async def accepted_at_least(self, n: int) -> None:
        await eventually(lambda: _true(len(self.accepted) >= n), timeout=60,
                         what=f"{n} accepted submissions")


async def _true(value: bool) -> bool:
    return value


async def test_with_replica_wait_an_added_job_is_on_the_replica_when_add_returns(
    sentinels: SentinelSet,
) -> None:
    client = connect(f"redis+sentinel://{sentinels.sentinels_setting}/{SENTINEL_MASTER}")
    queue = JobQueue("waited", client, prefix="aqwait", replica_wait=ReplicaWait(1, 2000))
    replica = redis.Redis(port=sentinels.replica, decode_responses=True)
    try:
        for n in range(10):
            job_id = await queue.add("work", {"n": n})
            # Read from the replica itself, at once: WAIT returned, so it has applied the add.
            assert replica.hget(f"aqwait:waited:{job_id}", "data") == f'{{"n":{n}}}'
        ids = await queue.add_bulk([("work", {"n": n}) for n in range(10, 20)])
        assert all(replica.exists(f"aqwait:waited:{job_id}") for job_id in ids)
    finally:
        await queue.close()
        await client.aclose()
        replica.close()


async def test_no_accepted_job_is_lost_when_the_primary_dies(
    sentinels: SentinelSet, tmp_path: Path
) -> None:
    env = {"REDIS_SENTINELS": sentinels.sentinels_setting,
           "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
           "REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "300",
           "AGENTQUEUE_DATA_DIR": str(tmp_path / "data"), "AI_PROVIDER": "builtin",
           "QUEUE_PREFIX": "aqsentinel", "PORT": str(free_port()),
           "QUEUE_LOCK_DURATION_MS": "2000", "QUEUE_STALLED_INTERVAL_MS": "1000",
           "REPAIR_INTERVAL_SECONDS": "2", "REPAIR_SETTLE_SECONDS": "2",
           "RATE_LIMIT_PER_MINUTE": "0"}
    with (agentqueue("api", env, tmp_path / "api.log") as api,
          agentqueue("worker", {**env, "PORT": "0"}, tmp_path / "worker.log") as worker):
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=5) as http:
            submitter = Submitter(http)
            task = asyncio.create_task(submitter.run())
            try:
                await submitter.accepted_at_least(10)
                await asyncio.to_thread(sentinels.kill_primary)
                before_failover = len(submitter.accepted)
                await asyncio.to_thread(sentinels.wait_failover)
                await submitter.accepted_at_least(before_failover + 10)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            accepted = list(submitter.accepted)

            async def completed(job_id: str) -> dict[str, Any] | None:
                answer = await http.get(f"/agent/queue/job/{job_id}")
                if answer.status_code != 200:
                    return None
                job: dict[str, Any] = answer.json()["job"]
                return job if job["status"] == "completed" else None

            for job_id in accepted:
                job = await eventually(lambda j=job_id: completed(j), timeout=60,
                                       what=f"accepted job {job_id} to complete")
                assert job["result"]["response"].endswith(
                    str(int(job["data"]["message"].split()[1].split("+")[0]) + 1))
        # Every accepted job ran to completion, and each id named one job.
        assert len(set(accepted)) == len(accepted)
    print(f"accepted {len(accepted)} ({len(accepted) - before_failover} after the primary "
          f"died), refused {submitter.refused} during the failover")
    assert "Traceback" not in worker.log(), worker.log()
