"""Jobs survive what production throws at them: killed workers, SIGTERM, a Redis restart.

Workers call a local stand-in for the OpenAI API that the test can hold open, so a job is
caught mid-call deterministically.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey, free_port
from agentqueue.records.store import Records
from tests.conftest import delete_prefix
from tests.support.fake_openai import FakeOpenAI, echo_last_user_message
from tests.support.processes import agentqueue
from tests.support.waiting import eventually


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as fake:
        yield fake


@pytest.fixture
async def env(
    redis_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    prefix = f"aqtest-{uuid.uuid4().hex[:10]}"
    yield {
        "AGENTQUEUE_DATA_DIR": str(tmp_path / "data"),  # shared by the test's processes
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": prefix,
        "AI_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MODEL": "fake-model",
        "QUEUE_LOCK_DURATION_MS": "2000",
        "QUEUE_STALLED_INTERVAL_MS": "1000",
        "QUEUE_BACKOFF_MS": "100",
        "PORT": str(free_port()),
    }
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def job_of(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
    return job


async def until_status(http: httpx.AsyncClient, job_id: str, status: str,
                       timeout: float = 30) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = await job_of(http, job_id)
        return job if job["status"] == status else None

    return await eventually(probe, timeout=timeout, what=f"job {job_id} {status}")


async def until_provider_called(fake: FakeOpenAI, times: int = 1) -> None:
    async def called() -> bool:
        return fake.count() >= times

    await eventually(called, what=f"{times} call(s) to the provider")


async def test_a_job_whose_worker_is_killed_is_finished_by_another(
    env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.hold()
    with agentqueue("api", env, tmp_path / "api.log") as api, \
            agentqueue("worker", env, tmp_path / "worker-a.log") as first:
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            job_id = (await http.post("/agent/queue/chat", json={"message": "hello"})).json()[
                "jobId"
            ]
            await until_provider_called(fake_openai)
            assert (await job_of(http, job_id))["status"] == "active"
            first.signal(signal.SIGKILL)
            first.wait_exit()
            fake_openai.release()
            with agentqueue("worker", env, tmp_path / "worker-b.log"):
                job = await until_status(http, job_id, "completed")
            assert job["result"]["response"] == "echo: hello"
            assert fake_openai.count() == 2  # once by the killed worker, once by the rescuer


async def test_sigterm_lets_the_active_job_finish(
    env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.hold()
    with agentqueue("api", env, tmp_path / "api.log") as api, \
            agentqueue("worker", env, tmp_path / "worker.log") as worker:
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            job_id = (await http.post("/agent/queue/chat", json={"message": "finish me"})).json()[
                "jobId"
            ]
            await until_provider_called(fake_openai)
            worker.signal(signal.SIGTERM)
            await worker.wait_log("Waiting up to")
            assert worker.proc.poll() is None, "the worker quit with a job still active"
            fake_openai.release()
            assert worker.wait_exit() == 0
            job = await job_of(http, job_id)
            assert job["status"] == "completed" and job["result"]["response"] == "echo: finish me"


async def test_a_failed_job_shows_its_reason_and_can_be_retried(
    env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.reply = lambda _: (500, {"error": {"message": "upstream exploded"}})
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as http:
            job_id = (await http.post("/agent/queue/chat", json={"message": "again"})).json()[
                "jobId"
            ]
            job = await until_status(http, job_id, "failed")
            assert job["attemptsMade"] == 3 and fake_openai.count() >= 3
            assert job["failedReason"] and "sk-test" not in job["failedReason"]
            result = (await http.get(f"/agent/queue/job/{job_id}/result")).json()
            assert result["success"] is False and result["message"] == "Job failed"
            assert "sk-test-not-a-real-key" not in serve.log()

            fake_openai.reply = echo_last_user_message
            retry = await http.post(f"/agent/queue/job/{job_id}/retry")
            assert retry.json() == {"success": True, "message": "Job retry initiated"}
            job = await until_status(http, job_id, "completed")
            assert job["result"]["response"] == "echo: again"


async def test_redis_restart_loses_no_accepted_job_and_health_follows(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A server of the test's own with AOF on: never restart the machine's shared Redis.
    valkey = EmbeddedValkey(tmp_path / "valkey", appendfsync="always")
    env = {**env, "REDIS_URL": await valkey.start(), "AI_PROVIDER": "builtin"}
    try:
        with agentqueue("serve", env, tmp_path / "serve.log") as serve:
            await serve.wait_healthy()
            async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as http:
                await http.post("/agent/queue/pause")
                ids = [
                    (await http.post("/agent/queue/chat",
                                     json={"message": f"Calculate {n} * 2"})).json()["jobId"]
                    for n in range(20)
                ]
                await valkey.stop()

                async def unhealthy() -> bool:
                    answer = await http.get("/agent/queue/health")
                    return answer.status_code == 503 and answer.json()["status"] == "unhealthy"

                await eventually(unhealthy, what="health to report Redis down")
                await valkey.start()

                async def healthy() -> bool:
                    return (await http.get("/agent/queue/health")).status_code == 200

                await eventually(healthy, what="health to recover by itself")
                await http.post("/agent/queue/resume")
                for n, job_id in enumerate(ids):
                    job = await until_status(http, job_id, "completed", timeout=60)
                    assert f"{n * 2}" in job["result"]["response"]
    finally:
        await valkey.stop()


async def test_embedded_valkey_crash_is_restarted_with_its_data(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey")
    url = await valkey.start()
    conn = connect(url)
    try:
        await conn.set("survives", "yes")
        assert valkey.process is not None
        valkey.process.kill()

        async def back() -> bool:
            try:
                return valkey.restarts == 1 and await conn.get("survives") == "yes"
            except Exception:
                return False

        await eventually(back, what="the embedded server to come back with its data")
    finally:
        await conn.aclose()
        await valkey.stop()


async def test_while_redis_is_down_every_submission_is_answered_and_a_503_leaves_no_record(
    env: dict[str, str], tmp_path: Path
) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", appendfsync="always")
    env = {**env, "REDIS_URL": await valkey.start(), "AI_PROVIDER": "builtin"}
    # Generous: "answered, not hung" (a request that waits this long fails the test).
    limits = httpx.Limits(max_connections=300)
    try:
        with agentqueue("serve", env, tmp_path / "serve.log") as serve:
            await serve.wait_healthy()
            async with httpx.AsyncClient(base_url=serve.base_url, timeout=10,
                                         limits=limits) as http:
                await valkey.stop()
                answers = await asyncio.gather(*(
                    http.post("/v1/jobs/sentiment", json={"text": f"fine day {n}"})
                    for n in range(200)
                ))
                refused = [a for a in answers if a.status_code == 503]
                accepted = [a.json()["id"] for a in answers if a.status_code == 201]
                assert len(refused) + len(accepted) == len(answers), {
                    a.status_code for a in answers}
                assert refused, "Redis was down: some submissions must be refused"
                assert all(a.headers.get("Retry-After") for a in refused)
                assert all(a.json()["success"] is False for a in refused)
                # A refused submission left no record; an accepted one has its record.
                # The server's database: the SQLite file in its data dir (no DATABASE_URL).
                settings = Settings(AGENTQUEUE_DATA_DIR=env["AGENTQUEUE_DATA_DIR"],
                                    DATABASE_URL=None)
                records = await Records.connect(settings.records_url)
                try:
                    jobs, total = await records.list_jobs(limit=1000)
                finally:
                    await records.close()
                assert sorted(job.job_id for job in jobs) == sorted(accepted)

                await valkey.start()

                async def submitted() -> str | None:
                    answer = await http.post("/v1/jobs/sentiment", json={"text": "back again"})
                    return answer.json()["id"] if answer.status_code == 201 else None

                again = await eventually(submitted, what="a submission accepted again")
                for job_id in [*accepted, again]:
                    async def succeeded(job_id: str = job_id) -> bool:
                        job = (await http.get(f"/v1/jobs/{job_id}")).json()
                        return bool(job.get("status") == "SUCCEEDED")

                    await eventually(succeeded, timeout=60, what=f"job {job_id} to run")
    finally:
        await valkey.stop()
