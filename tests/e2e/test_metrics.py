"""`GET /metrics` over HTTP: one API process shows what two worker processes did, and only
admins may read it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.metrics import Samples, of, samples
from tests.support.processes import agentqueue
from tests.support.service import bearer, process_env
from tests.support.waiting import eventually


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    async with process_env(redis_url, tmp_path / "data") as env:
        yield env


async def test_one_api_process_shows_the_jobs_of_two_worker_processes(
    env: dict[str, str], tmp_path: Path
) -> None:
    with agentqueue("api", env, tmp_path / "api.log") as api, \
            agentqueue("worker", {**env, "WORKER_PROCESSES": "2"}, tmp_path / "worker.log"):
        await api.wait_healthy()
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:
            assert (await http.get("/metrics")).status_code == 401
            assert (await http.get("/metrics", headers=bearer("user-1"))).status_code == 403
            for n in range(6):
                answer = await http.post("/v1/jobs/sentiment", headers=bearer("user-1"),
                                         json={"text": f"what a lovely day {n}"})
                assert answer.status_code == 201, answer.text

            async def scraped() -> Samples | None:
                answer = await http.get("/metrics", headers=bearer("admin-1", "admin"))
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
                found = samples(answer.content)
                done = of(found, "agentqueue_jobs_completed_total", queue="ai-jobs",
                          type="sentiment")
                workers = of(found, "agentqueue_workers", queue="ai-jobs")
                return found if done == 6 and workers == 2 else None

            found = await eventually(scraped, timeout=30, what="six jobs and two workers")
    assert of(found, "agentqueue_jobs_enqueued_total", queue="ai-jobs", type="sentiment") == 6
    assert of(found, "agentqueue_jobs", queue="ai-jobs", state="completed") == 6
    assert of(found, "agentqueue_job_wait_seconds_count", queue="ai-jobs",
              type="sentiment") == 6
