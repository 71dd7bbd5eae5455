"""examples/custom_job.py run as a user would: `agentqueue worker examples.custom_job:app` in
one process, the example script in another, then the job seen through `/api/jobs` of an
`agentqueue api --app examples.custom_job:app`, which also accepts the type itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.examples import REPO, run_script
from tests.support.processes import agentqueue, free_port
from tests.support.service import create_key
from tests.support.waiting import eventually

APP = "examples.custom_job:app"


async def test_the_example_runs_against_a_worker_and_shows_in_api_jobs(
    env: dict[str, str], tmp_path: Path
) -> None:
    with agentqueue(f"worker {APP}", env, tmp_path / "worker.log", cwd=REPO) as worker:
        await worker.wait_log("Worker on queue 'jobs' started")
        assert "word-count" in worker.log()
        done = await run_script("examples/custom_job.py", env)
        assert done.returncode == 0, done.stderr
        assert "result: {'words': 8, 'top': [{'word': 'the', 'count': 3}, " \
               "{'word': 'and', 'count': 2}, {'word': 'bat', 'count': 1}]}" in done.stdout

        key = create_key(env, "--user", "example-user", "--org", "example-org")
        api_env = {**env, "PORT": str(free_port())}
        with agentqueue(f"api --app {APP}", api_env, tmp_path / "api.log", cwd=REPO) as api:
            await api.wait_healthy()
            async with httpx.AsyncClient(base_url=api.base_url, timeout=30, headers={
                    "Authorization": f"Bearer {key}"}) as http:
                listed = (await http.get("/api/jobs", params={"type": "word-count"})).json()
                assert [(j["status"], j["result"]["words"]) for j in listed["jobs"]] == [
                    ("completed", 8)]
                assert listed["jobs"][0]["progress"]["percentage"] == 100

                # The user's type over HTTP: its input model checks the data at enqueue…
                refused = await http.post("/api/jobs", json={"type": "word-count",
                                                             "data": {"text": ""}})
                assert refused.status_code == 400, refused.text
                assert "data.text" in refused.json()["message"]
                # …and the worker runs it, with the type's own attempts.
                created = await http.post("/api/jobs", json={"type": "word-count",
                                                             "data": {"text": "a b a"}})
                assert created.status_code == 201, created.text
                assert created.json()["maxAttempts"] == 2

                async def finished() -> Any:
                    job = (await http.get(f"/api/jobs/{created.json()['id']}")).json()
                    return job if job["status"] == "completed" else None

                job = await eventually(finished, timeout=30, what="the HTTP job completed")
                assert job["result"]["top"][0] == {"word": "a", "count": 2}


async def test_serve_with_the_app_runs_its_type_from_post_api_jobs(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = create_key(env, "--user", "u1", "--org", "o1")
    with agentqueue(f"serve --app {APP}", env, tmp_path / "serve.log", cwd=REPO) as serve:
        await serve.wait_healthy()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            created = await http.post("/api/jobs", json={"type": "word-count",
                                                         "data": {"text": "x y x", "top": 1}})
            assert created.status_code == 201, created.text
            assert created.json()["id"].startswith("jobs:")

            async def finished() -> Any:
                job = (await http.get(f"/api/jobs/{created.json()['id']}")).json()
                return job if job["status"] in ("completed", "failed") else None

            job = await eventually(finished, timeout=30, what="the job finished")
            assert (job["status"], job["result"]) == (
                "completed", {"words": 3, "top": [{"word": "x", "count": 2}]})
