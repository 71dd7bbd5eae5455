"""Back-pressure over HTTP: past a queue's or a tenant's backlog limit, submissions get 429
with Retry-After and leave no record; once workers catch up, submissions are accepted again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import agentqueue
from tests.support.service import as_caller, process_env
from tests.support.waiting import eventually


@pytest.fixture
async def env(redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    async with process_env(redis_url, tmp_path / "data", MAX_QUEUE_BACKLOG="3",
                           MAX_TENANT_BACKLOG="2") as env:
        yield env


as_user = as_caller


async def submit(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/v1/jobs/sentiment", json={"text": "what a lovely day"})


async def recorded(http: httpx.AsyncClient) -> int:
    total: int = (await http.get("/v1/jobs")).json()["total"]
    return total


def assert_refused(answer: httpx.Response, message: str) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json() == {"success": False, "message": message}
    assert int(answer.headers["Retry-After"]) >= 1


async def test_backlog_limits_refuse_with_429_until_workers_catch_up(
    env: dict[str, str], tmp_path: Path
) -> None:
    with agentqueue("api", env, tmp_path / "api.log") as api:  # no worker: jobs pile up
        await api.wait_healthy()
        async with as_user(api.base_url, "alice", "acme") as alice, \
                as_user(api.base_url, "bob", "acme") as bob, \
                as_user(api.base_url, "carol", "globex") as carol:
            # Per tenant: organization acme may have 2 unfinished jobs, whoever submits them.
            assert [(await submit(alice)).status_code for _ in range(2)] == [201, 201]
            tenant_full = ("organization acme has 2 unfinished jobs (limit 2, "
                           "MAX_TENANT_BACKLOG); try again later")
            assert_refused(await submit(alice), tenant_full)
            assert_refused(await submit(bob), tenant_full)
            assert await recorded(alice) == 2 and await recorded(bob) == 0  # no record left
            # acme at its limit does not hold back globex.
            assert (await submit(carol)).status_code == 201

            # Per queue: ai-jobs now has 3 jobs waiting, its limit, whoever asks.
            assert_refused(await submit(carol), "queue ai-jobs has 3 jobs waiting (limit 3, "
                                                "MAX_QUEUE_BACKLOG); try again later")
            assert await recorded(carol) == 1

            with agentqueue("worker", env, tmp_path / "worker.log"):
                async def accepted(http: httpx.AsyncClient) -> Any:
                    answer = await submit(http)
                    return answer.status_code == 201 or None

                await eventually(lambda: accepted(alice), timeout=60,
                                 what="alice's submission to be accepted again")
                await eventually(lambda: accepted(carol), timeout=60,
                                 what="carol's submission to be accepted again")
