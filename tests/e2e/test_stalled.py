"""A job whose worker dies mid-run is run again, each crash spending one of its attempts.

Workers call a local stand-in for the OpenAI API that holds every request open, so each worker
is caught mid-job and SIGKILLed; short lock and stalled-check intervals let the next worker
rescue the job quickly. (That a job whose workers die more often than its attempts allow fails,
saying so, is tested in-process in tests/engine/test_worker.py.)
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from agentqueue.records.store import Records
from tests.e2e.test_resilience import env, fake_openai, until_status
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import agentqueue
from tests.support.waiting import eventually

__all__ = ["env", "fake_openai"]  # fixtures shared with the resilience tests


async def until_provider_called(fake: FakeOpenAI, times: int) -> None:
    async def called() -> bool:
        return fake.count() >= times

    # A worker starting on a busy machine takes a while before it takes the job.
    await eventually(called, timeout=60, what=f"{times} call(s) to the provider")


async def kill_a_worker_mid_job(
    env: dict[str, str], fake: FakeOpenAI, tmp_path: Path, run: int
) -> None:
    """Start a worker, let it take the job (its `run`-th call to the provider), SIGKILL it."""
    with agentqueue("worker", env, tmp_path / f"worker-{run}.log") as worker:
        await until_provider_called(fake, times=run)
        worker.signal(signal.SIGKILL)
        worker.wait_exit()


async def history(env: dict[str, str], queue: str, job_id: str) -> list[tuple[str, str | None]]:
    database = Path(env["AGENTQUEUE_DATA_DIR"]) / "agentqueue.db"
    records = await Records.connect(f"sqlite+aiosqlite:///{database}")
    try:
        return [(e.status, e.message) for e in await records.history(queue, job_id)]
    finally:
        await records.close()


async def test_a_job_whose_worker_is_killed_twice_completes_on_its_third_attempt(
    env: dict[str, str], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.hold()
    with agentqueue("api", env, tmp_path / "api.log") as api:
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            job_id = (await http.post("/agent/queue/chat", json={"message": "survive"})).json()[
                "jobId"
            ]
            for run in (1, 2):
                await kill_a_worker_mid_job(env, fake_openai, tmp_path, run)
            with agentqueue("worker", env, tmp_path / "worker-3.log"):
                await until_provider_called(fake_openai, times=3)
                fake_openai.release()
                job = await until_status(http, job_id, "completed", timeout=60)
            assert job["result"]["response"] == "echo: survive"
            assert job["attemptsMade"] == 3  # the two crashed runs and the one that finished
            assert fake_openai.count() == 3
    events = await history(env, "agent-queue", job_id)
    assert events.count(("active", "re-run after its worker stopped (stalled)")) == 2, events
    assert events[-1][0] == "completed"

