"""A user's job types served by `agentqueue serve --app module:app --no-builtin`: only they are
run and accepted, and their input models are in the OpenAPI schema."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import CLI, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
APP = "examples.custom_job:app"


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url)
    yield env
    await delete_service_keys(env)


async def test_serve_no_builtin_runs_and_documents_only_the_apps_types(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = create_key(env, "--user", "u1", "--org", "o1")
    command = f"serve --app {APP} --no-builtin"
    with agentqueue(command, env, tmp_path / "serve.log", cwd=REPO) as serve:
        await serve.wait_healthy()
        await serve.wait_log("Worker on queue 'jobs' started")
        assert "Worker on queue 'agent-queue'" not in serve.log()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            schema = (await http.get("/openapi.json")).json()
            components = schema["components"]["schemas"]
            model = components["JobData.WordCountInput"]
            assert set(model["properties"]) == {"text", "top"}
            assert model["properties"]["top"]["maximum"] == 20
            body = schema["paths"]["/api/jobs"]["post"]["requestBody"]["content"]
            assert body["application/json"]["schema"]["discriminator"]["mapping"] == {
                "word-count": "#/components/schemas/CreateJob.word-count"}
            assert "JobData.ChatInput" not in components

            refused = await http.post("/api/jobs", json={"type": "summarize",
                                                         "data": {"text": "Hi."}})
            assert refused.status_code == 400
            assert refused.json()["message"] == (
                "type: unknown job type 'summarize'; known: word-count")
            not_served = await http.post("/v1/jobs/summarize", json={"text": "Hi."})
            assert not_served.status_code == 404, not_served.text

            created = await http.post("/api/jobs", json={"type": "word-count",
                                                         "data": {"text": "b a b"}})
            assert created.status_code == 201, created.text

            async def finished() -> Any:
                job = (await http.get(f"/api/jobs/{created.json()['id']}")).json()
                return job if job["status"] in ("completed", "failed") else None

            job = await eventually(finished, timeout=30, what="the job finished")
            assert job["status"] == "completed" and job["result"]["words"] == 3


def test_no_builtin_without_an_app_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [CLI, "worker", "--no-builtin"], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "AGENTQUEUE_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://x",
             "COLUMNS": "300"},
    )
    assert done.returncode == 2
    assert "--no-builtin serves only an App's job types" in done.stderr
