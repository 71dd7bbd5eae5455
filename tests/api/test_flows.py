"""Flows over HTTP (`POST /api/flows`, `GET /api/flows/{id}`): a parent with three children,
created in one request, run after them with their results; owned like jobs; a bad child
queues nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.app_api import app_api
from tests.support.waiting import eventually
from tests.test_flows import make_app


async def _completed(http: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        flow = (await http.get(f"/api/flows/{ref}")).json()
        done = flow["status"] == "completed" and all(
            c["status"] == "completed" for c in flow["children"])
        return flow if done else None

    return await eventually(probe, what=f"flow {ref} completed")


async def test_a_flow_of_three_children_and_a_parent(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with app_api(make_app, redis_url, prefix, tmp_path) as (_, services, http):
        body = {"type": "total", "name": "sum of squares",
                "children": [{"type": "part", "data": {"n": n}} for n in (1, 2, 3)]}
        created = await http["alice"].post("/api/flows", json=body,
                                           headers={"Idempotency-Key": "flow-1"})
        assert created.status_code == 201, created.text
        flow = created.json()
        assert flow["type"] == "total" and flow["name"] == "sum of squares"
        assert flow["status"] == "pending" and flow["userId"] == "alice"
        assert [c["type"] for c in flow["children"]] == ["part"] * 3
        assert all(c["children"] == [] for c in flow["children"])
        # Ids stay 1, 2, 3… as for single jobs: the next job of the queue follows the flow's.
        ids = [flow["id"], *(c["id"] for c in flow["children"])]
        assert ids == ["jobs:1", "jobs:2", "jobs:3", "jobs:4"]
        # Sent again with the same key: the same flow, not a second one.
        again = await http["alice"].post("/api/flows", json=body,
                                         headers={"Idempotency-Key": "flow-1"})
        assert again.status_code == 200 and again.json() == flow
        assert (await services.records.list_jobs())[1] == 4
        single = await http["alice"].post("/api/jobs", json={"type": "part", "data": {"n": 5}})
        assert single.json()["id"] == "jobs:5"

        done = await _completed(http["alice"], flow["id"])
        child_ids = sorted(c["id"] for c in flow["children"])
        assert sorted(c["id"] for c in done["children"]) == child_ids
        assert done["result"] == {"sum": 14, "children": child_ids, "failed": {}}
        assert [c["result"] for c in done["children"]] == [
            {"square": 1}, {"square": 4}, {"square": 9}]
        # Every job of the flow is a job of /api/jobs too, and the caller's own.
        child = (await http["alice"].get(f"/api/jobs/{child_ids[0]}")).json()
        assert child["status"] == "completed" and child["userId"] == "alice"
        assert (await http["bob"].get(f"/api/flows/{flow['id']}")).status_code == 404
        assert (await http["root"].get(f"/api/flows/{flow['id']}")).status_code == 200


async def test_a_failing_child_fails_the_parent_or_is_ignored(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with app_api(make_app, redis_url, prefix, tmp_path) as (_, services, http):
        failing = {"type": "total", "children": [
            {"type": "part", "data": {"n": 1}},
            {"type": "part", "data": {"n": 2, "fail": True}, "maxAttempts": 1}]}
        flow = (await http["alice"].post("/api/flows", json=failing)).json()

        async def parent_failed() -> dict[str, Any] | None:
            job = (await http["alice"].get(f"/api/jobs/{flow['id']}")).json()
            return job if job["status"] == "failed" else None

        parent = await eventually(parent_failed, what="the parent failed")
        broken = flow["children"][1]["id"]
        assert parent["error"].endswith(f":{broken} failed")

        ignoring = {"type": "total", "children": [
            {"type": "part", "data": {"n": 3}},
            {"type": "part", "data": {"n": 4, "fail": True}, "maxAttempts": 1,
             "onFailure": "ignore"}]}
        flow = (await http["alice"].post("/api/flows", json=ignoring)).json()

        async def parent_done() -> dict[str, Any] | None:
            job = (await http["alice"].get(f"/api/jobs/{flow['id']}")).json()
            return job if job["status"] == "completed" else None

        parent = await eventually(parent_done, what="the parent completed")
        ignored = flow["children"][1]["id"]
        assert parent["result"]["sum"] == 9
        assert parent["result"]["failed"] == {ignored: "part 4 broke"}


async def test_a_bad_child_is_a_400_naming_it_and_queues_nothing(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with app_api(make_app, redis_url, prefix, tmp_path) as (_, services, http):
        answer = await http["alice"].post("/api/flows", json={"type": "total", "children": [
            {"type": "part", "data": {"n": 1}}, {"type": "part", "data": {"n": "x"}}]})
        assert answer.status_code == 400
        assert answer.json()["message"].startswith("children[1].data.n:")
        answer = await http["alice"].post("/api/flows", json={"type": "total", "children": [
            {"type": "nope"}]})
        assert answer.status_code == 400
        assert "children[0].type: unknown job type 'nope'" in answer.json()["message"]
        answer = await http["alice"].post("/api/flows", json={
            "type": "total", "children": [{"type": "part", "onFailure": "explode"}]})
        assert answer.status_code == 400
        assert (await services.records.list_jobs())[1] == 0
