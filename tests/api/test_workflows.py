"""Stored workflows over HTTP (`/api/workflows`): a named definition created, read, listed,
replaced, run by id with an input (a `workflow-execution` job that completes), deleted; owned
like jobs (another user's answers 404); a definition that can never run is a 400."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from agentqueue.api.app import create_app
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.services import Services, build_workers
from agentqueue.serving import serve
from tests.conftest import delete_prefix
from tests.handlers.test_workflows import make_app
from tests.support.waiting import eventually

Clients = dict[str, httpx.AsyncClient]


@contextlib.asynccontextmanager
async def api_and_worker(redis_url: str, prefix: str, tmp_path: Path
                         ) -> AsyncIterator[tuple[Services, Clients]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    user_app = make_app(settings)
    user_app.install()
    api = create_app(settings, run_worker=False)
    try:
        async with api.router.lifespan_context(api):
            services: Services = api.state.services
            group = build_workers(settings, redis_url, ["jobs"], records=services.records,
                                  registry=user_app.types())
            await group.start()
            clients: Clients = {}
            for user, org, admin in (("alice", "acme", False), ("bob", "acme", False),
                                     ("carol", "other", False), ("root", "acme", True)):
                key, _ = await services.records.create_api_key(user_id=user, org_id=org,
                                                               is_admin=admin)
                clients[user] = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api), base_url="http://test",
                    headers={"Authorization": f"Bearer {key}"}, timeout=30)
            try:
                yield services, clients
            finally:
                for http in clients.values():
                    await http.aclose()
                await group.stop(5)
    finally:
        await user_app.close()
        serve(None)
        conn = connect(redis_url)
        await delete_prefix(conn, prefix)
        await conn.aclose()


SHOUT = {
    "name": "shout",
    "description": "upper-case a text, then reverse its words",
    "steps": [
        {"id": "up", "type": "wf-upper", "input": {"text": {"$ref": "input.text"}}},
        {"id": "back", "type": "wf-join",
         "input": {"words": {"$ref": "steps.up.result.words"}}},
    ],
}


async def _completed(http: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    async def probe() -> Any:
        job = (await http.get(f"/api/jobs/{ref}")).json()
        return job if job["status"] in ("completed", "failed") else None

    found: dict[str, Any] = await eventually(probe, what=f"job {ref} to finish")
    return found


async def test_a_stored_workflow_is_run_by_id_and_owned(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with api_and_worker(redis_url, prefix, tmp_path) as (_, http):
        created = await http["alice"].post("/api/workflows", json=SHOUT)
        assert created.status_code == 201, created.text
        stored = created.json()
        wf_id = stored["id"]
        assert stored["name"] == "shout" and stored["userId"] == "alice"
        assert [s["id"] for s in stored["steps"]] == ["up", "back"]
        assert stored["steps"][0]["onFailure"] == "fail"  # the defaults, as stored

        assert (await http["alice"].get(f"/api/workflows/{wf_id}")).json() == stored
        listed = (await http["alice"].get("/api/workflows")).json()
        assert [w["id"] for w in listed["workflows"]] == [wf_id] and listed["total"] == 1
        # Another user's, even of the same organization, is not there.
        for other in ("bob", "carol"):
            assert (await http[other].get(f"/api/workflows/{wf_id}")).status_code == 404
            assert (await http[other].post(f"/api/workflows/{wf_id}/run",
                                           json={})).status_code == 404
            assert (await http[other].get("/api/workflows")).json()["total"] == 0
        assert (await http["root"].get(f"/api/workflows/{wf_id}")).status_code == 200

        run = await http["alice"].post(f"/api/workflows/{wf_id}/run",
                                       json={"input": {"text": "hello big world"}})
        assert run.status_code == 201, run.text
        assert run.json()["type"] == "workflow-execution" and run.json()["name"] == "shout"
        job = await _completed(http["alice"], run.json()["id"])
        assert job["status"] == "completed", job
        assert job["result"]["steps"]["back"]["result"] == {"text": "WORLD BIG HELLO"}

        # Input the steps' types refuse, once filled in: 400 at the run, nothing queued.
        refused = await http["alice"].post(f"/api/workflows/{wf_id}/run",
                                           json={"input": {"text": 5}})
        assert refused.status_code == 400
        assert "step 'up' (wf-upper): data.text" in refused.json()["message"]

        replaced = await http["alice"].put(f"/api/workflows/{wf_id}", json={
            "name": "shout only", "steps": [SHOUT["steps"][0]]})
        assert replaced.status_code == 200 and replaced.json()["name"] == "shout only"
        assert (await http["bob"].put(f"/api/workflows/{wf_id}",
                                      json=SHOUT)).status_code == 404
        again = await http["alice"].post(f"/api/workflows/{wf_id}/run",
                                         json={"input": {"text": "hi"}})
        job = await _completed(http["alice"], again.json()["id"])
        assert list(job["result"]["steps"]) == ["up"]

        assert (await http["bob"].delete(f"/api/workflows/{wf_id}")).status_code == 404
        assert (await http["alice"].delete(f"/api/workflows/{wf_id}")).status_code == 204
        assert (await http["alice"].get(f"/api/workflows/{wf_id}")).status_code == 404


async def test_a_definition_that_can_never_run_is_refused(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with api_and_worker(redis_url, prefix, tmp_path) as (_, http):
        cases = [
            ([{"id": "a", "type": "wf-upper", "input": {"text": "x"}, "dependsOn": ["a"]}],
             "step 'a' depends on itself"),
            ([{"id": "a", "type": "wf-upper", "dependsOn": ["b"]},
              {"id": "b", "type": "wf-upper", "dependsOn": ["a"]}], "cycle"),
            ([{"id": "a", "type": "nope"}], "unknown job type 'nope'"),
            ([{"id": "a", "type": "wf-upper", "input": {"text": 1}}], "data.text"),
            ([{"id": "a b", "type": "wf-upper"}], "steps[0].id"),
        ]
        for steps, says in cases:
            refused = await http["alice"].post("/api/workflows",
                                               json={"name": "bad", "steps": steps})
            assert refused.status_code == 400, refused.text
            assert says in refused.json()["message"], refused.json()
        assert (await http["alice"].get("/api/workflows")).json()["total"] == 0
