"""`ctx.step`: a handler's durable steps, replayed by the job's retry, shown at
`GET /api/jobs/{id}/steps` to the job's owner (others: 404)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from tests.support.app_api import app_api
from tests.support.waiting import eventually

CALLS: list[str] = []


class Input(BaseModel):
    items: list[int]


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings)

    async def double(n: int) -> int:
        CALLS.append(f"double {n}")
        return n * 2

    async def not_json() -> object:
        return object()

    @app.job("doubles", queue="jobs", attempts=3, backoff="fixed", backoff_ms=10)
    async def doubles(ctx: agentqueue.Context, data: Input) -> dict[str, Any]:
        out = [await ctx.step("double", double, n) for n in data.items]
        if ctx.attempt == 1:
            raise RuntimeError("fails after its steps, the first time")
        return {"out": out, "attempt": ctx.attempt}

    @app.job("bad-steps", queue="jobs", attempts=1)
    async def bad_steps(ctx: agentqueue.Context, data: Input) -> None:
        if data.items == [1]:
            await ctx.step("tool:mine", double, 1)
        await ctx.step("odd", not_json)

    return app


async def _finished(http: Any, ref: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/api/jobs/{ref}")).json()
        return job if job["status"] in ("completed", "failed") else None

    return await eventually(probe, what=f"job {ref} finished")


async def test_a_retry_replays_the_finished_steps_and_the_api_shows_them(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    CALLS.clear()
    async with app_api(make_app, redis_url, prefix, tmp_path) as (_, _services, http):
        created = await http["alice"].post("/api/jobs", json={
            "type": "doubles", "data": {"items": [3, 3, 5]}})
        ref = created.json()["id"]
        job = await _finished(http["alice"], ref)
        assert job["status"] == "completed", job
        assert job["result"] == {"out": [6, 6, 10], "attempt": 2}
        assert CALLS == ["double 3", "double 3", "double 5"]  # attempt 2 replayed all three

        shown = await http["alice"].get(f"/api/jobs/{ref}/steps")
        assert shown.status_code == 200
        steps = shown.json()["steps"]
        assert [(s["name"], s["result"], s["attempt"], s["kind"]) for s in steps] == [
            ("double", 6, 1, "step"), ("double#2", 6, 1, "step"), ("double#3", 10, 1, "step")]
        assert (await http["bob"].get(f"/api/jobs/{ref}/steps")).status_code == 404
        assert (await http["root"].get(f"/api/jobs/{ref}/steps")).status_code == 200


@pytest.mark.parametrize(("items", "error"), [
    ([1], "invalid step name 'tool:mine'"),
    ([2], "step 'odd' returned a value JSON cannot hold"),
])
async def test_a_reserved_name_or_a_result_json_cannot_hold_fails_the_job(
    redis_url: str, prefix: str, tmp_path: Path, items: list[int], error: str
) -> None:
    async with app_api(make_app, redis_url, prefix, tmp_path) as (_, _services, http):
        created = await http["alice"].post("/api/jobs", json={
            "type": "bad-steps", "data": {"items": items}})
        job = await _finished(http["alice"], created.json()["id"])
        assert job["status"] == "failed" and error in job["error"], job
