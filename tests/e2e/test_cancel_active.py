"""Cancelling an ACTIVE job over HTTP, end to end: `agentqueue serve --app` runs a user's job
type and middleware; `PATCH /api/jobs/{id}/cancel` stops the running handler, the job fails
without retry, its record says `cancelled`, and the user's failure hook heard of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

USER_APP = '''
import asyncio
import logging

from pydantic import BaseModel

import agentqueue

log = logging.getLogger("user.audit")


class Audit(agentqueue.Middleware):
    async def before_job(self, ctx):
        log.warning("audit: job %s starts", ctx.id)

    async def on_failure(self, ctx, error, will_retry):
        log.warning("audit: job %s failed (retry: %s): %s", ctx.id, will_retry, error)


app = agentqueue.App()
app.add_middleware(Audit())


class HoldInput(BaseModel):
    label: str = "hold"


@app.job("hold", attempts=3)
async def hold(ctx, data: HoldInput) -> None:
    await ctx.progress(5)
    await asyncio.Event().wait()  # until cancelled
'''


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url)
    yield env
    await delete_service_keys(env)


async def test_cancelling_an_active_job_over_http_leaves_its_record_cancelled(
    env: dict[str, str], tmp_path: Path
) -> None:
    app_file = tmp_path / "user_jobs.py"
    app_file.write_text(USER_APP)
    key = create_key(env, "--user", "u1", "--org", "o1")
    with agentqueue(f"serve --app {app_file}:app", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            created = await http.post("/api/jobs", json={"type": "hold", "data": {}})
            assert created.status_code == 201, created.text
            job_ref = created.json()["id"]

            async def active() -> Any:
                job = (await http.get(f"/api/jobs/{job_ref}")).json()
                return job if job["status"] == "active" else None

            await eventually(active, timeout=30, what="the job to be active")
            job_id = job_ref.rsplit(":", 1)[-1]
            await serve.wait_log(f"audit: job {job_id} starts")

            cancelled = await http.patch(f"/api/jobs/{job_ref}/cancel")
            assert cancelled.status_code == 200, cancelled.text

            async def recorded_cancelled() -> Any:
                job = (await http.get(f"/api/jobs/{job_ref}")).json()
                return job if job["status"] in ("cancelled", "failed", "completed") else None

            job = await eventually(recorded_cancelled, timeout=30, what="the job to end")
            assert job["status"] == "cancelled"
            assert job["error"] == "Cancelled by user"
            assert job["attempts"] == 1  # not retried, though it had 3 attempts
            await serve.wait_log(f"audit: job {job_id} failed (retry: False): Cancelled by user")
