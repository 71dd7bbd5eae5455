"""Seed 001's `workflow-execution` and `bulk-operation` over HTTP, end to end: `agentqueue
serve --app` runs a user's type beside the built-in ones; a workflow's steps (built-in and the
user's) run as jobs of their own, its caller's and no one else's; definitions that can never run
answer 400; a schedule of a workflow runs it; cancelling a bulk job stops the items not yet
run."""

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

log = logging.getLogger("user.items")
app = agentqueue.App()


class Item(BaseModel):
    n: int
    hold: bool = False


@app.job("tally")
async def tally(ctx, data: Item) -> dict:
    log.warning("item %d starts", data.n)
    if data.hold:
        await asyncio.Event().wait()  # until cancelled
    return {"n": data.n, "double": 2 * data.n}
'''

WORKFLOW = {
    "name": "review",
    "steps": [
        {"id": "gist", "type": "summarize",
         "input": {"text": {"$ref": "input.text"}, "maxSentences": 1}},
        {"id": "mood", "type": "sentiment",
         "input": {"text": {"$ref": "steps.gist.result.summary"}}},
        {"id": "count", "type": "tally", "input": {"n": {"$ref": "input.n"}},
         "dependsOn": ["gist"]},
    ],
}
TEXT = ("The new release is excellent and fast. Users love the clean design. "
        "Support answered every question within an hour.")


@pytest.fixture
async def env(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, str]]:
    env = serve_env(tmp_path / "data", REDIS_URL=redis_url)
    yield env
    await delete_service_keys(env)


async def _finished(http: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    async def probe() -> Any:
        job = (await http.get(f"/api/jobs/{ref}")).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    found: dict[str, Any] = await eventually(probe, timeout=60, what=f"job {ref} to finish")
    return found


async def test_workflows_and_bulk_operations_over_http(
    env: dict[str, str], tmp_path: Path
) -> None:
    app_file = tmp_path / "user_jobs.py"
    app_file.write_text(USER_APP)
    alice = {"Authorization": f"Bearer {create_key(env, '--user', 'alice', '--org', 'acme')}"}
    bob = {"Authorization": f"Bearer {create_key(env, '--user', 'bob', '--org', 'other')}"}
    with agentqueue(f"serve --app {app_file}:app", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30, headers=alice) as http:
            # -- a workflow: built-in steps and the user's, earlier results filled in
            created = await http.post("/api/jobs", json={
                "type": "workflow-execution",
                "data": {"workflow": WORKFLOW, "input": {"text": TEXT, "n": 21}}})
            assert created.status_code == 201, created.text
            job = await _finished(http, created.json()["id"])
            assert job["status"] == "completed", job
            steps = job["result"]["steps"]
            assert [steps[s]["status"] for s in ("gist", "mood", "count")] == ["completed"] * 3
            assert steps["mood"]["result"]["sentiment"] == "positive"
            assert steps["count"]["result"] == {"n": 21, "double": 42}
            # Each step is the caller's job, and nobody else's.
            step = (await http.get(f"/api/jobs/{steps['mood']['jobId']}")).json()
            assert step["type"] == "sentiment" and step["userId"] == "alice"
            assert step["organizationId"] == "acme"
            async with httpx.AsyncClient(base_url=serve.base_url, timeout=30,
                                         headers=bob) as other:
                for ref in (created.json()["id"], steps["mood"]["jobId"]):
                    assert (await other.get(f"/api/jobs/{ref}")).status_code == 404

            # -- definitions that can never run: 400, naming what is wrong
            cycle = {"name": "loop", "steps": [
                {"id": "a", "type": "tally", "input": {"n": 1}, "dependsOn": ["b"]},
                {"id": "b", "type": "tally", "input": {"n": 2}, "dependsOn": ["a"]}]}
            dangling = {"name": "dangling", "steps": [
                {"id": "a", "type": "tally", "input": {"n": {"$ref": "steps.zzz.result.n"}}}]}
            unfit = {"name": "unfit", "steps": [{"id": "a", "type": "tally", "input": {}}]}
            for workflow, says in ((cycle, "cycle"), (dangling, "unknown step(s) zzz"),
                                   (unfit, "data.n: is required")):
                refused = await http.post("/api/jobs", json={
                    "type": "workflow-execution", "data": {"workflow": workflow}})
                assert refused.status_code == 400, refused.text
                assert says in refused.json()["message"]

            # -- a schedule whose job is a workflow: its runs are workflows that complete
            scheduled = await http.post("/api/schedules", json={
                "type": "workflow-execution", "every": 1000, "limit": 2,
                "data": {"workflow": WORKFLOW, "input": {"text": TEXT, "n": 1}}})
            assert scheduled.status_code == 201, scheduled.text
            schedule_id = scheduled.json()["id"]

            async def two_runs_completed() -> Any:
                runs = (await http.get(f"/api/schedules/{schedule_id}/runs")).json()["runs"]
                done = [r for r in runs if r["status"] == "completed"]
                return done if len(done) == 2 else None

            runs = await eventually(two_runs_completed, timeout=60, what="two scheduled runs")
            for run in runs:
                assert run["type"] == "workflow-execution" and run["userId"] == "alice"
                assert run["result"]["steps"]["count"]["result"] == {"n": 1, "double": 2}

            # -- a bulk operation, cancelled while item 3 runs: items 4… never start
            items = [{"n": n, "hold": n == 3} for n in range(10)]
            bulk = await http.post("/api/jobs", json={"type": "bulk-operation", "data": {
                "jobType": "tally", "items": items, "chunkSize": 1, "concurrency": 1}})
            assert bulk.status_code == 201, bulk.text
            ref = bulk.json()["id"]

            async def three_done() -> Any:
                job = (await http.get(f"/api/jobs/{ref}")).json()
                progress = job.get("progress") or {}
                return job if isinstance(progress, dict) and progress.get("current") == 3 \
                    else None

            during = await eventually(three_done, timeout=30, what="3 of 10 items done")
            assert during["progress"]["message"] == "Processing item 3 of 10"
            await serve.wait_log("item 3 starts")
            cancelled = await http.patch(f"/api/jobs/{ref}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            job = await _finished(http, ref)
            assert job["status"] == "cancelled"
            assert all(f"item {n} starts" not in serve.log() for n in range(4, 10))

            # -- bulk items that can never run: 400 naming them
            refused = await http.post("/api/jobs", json={"type": "bulk-operation", "data": {
                "jobType": "tally", "items": [{"n": 1}, {"n": "two"}]}})
            assert refused.status_code == 400
            assert "items[1]: data.n" in refused.json()["message"]
