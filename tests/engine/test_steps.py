"""The step log of a job (`engine.steps`), on a real Redis: finished steps replay, numbered by
name; a step asked something else runs again; results held back until the run goes on are
lost with a run that ends first."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from agentqueue.engine.steps import StepLog, read_steps


def log_of(client: redis.Redis, prefix: str, attempt: int) -> StepLog:
    return StepLog(client, prefix=prefix, queue="jobs", job_id="7", attempt=attempt)


async def test_a_later_run_replays_what_finished_and_redoes_what_was_asked_otherwise(
    client: redis.Redis, prefix: str
) -> None:
    ran: list[Any] = []

    async def work(n: int) -> int:
        ran.append(n)
        return n * 10

    first = log_of(client, prefix, 1)
    assert [await first.run("work", work, n) for n in (1, 2)] == [10, 20]
    second = log_of(client, prefix, 2)
    assert await second.run("work", work, 1) == 10  # replayed
    assert await second.run("work", work, 3) == 30  # `work#2` was asked 2 before: run again
    assert ran == [1, 2, 3] and second.replayed == 1
    steps = await read_steps(client, prefix, "jobs", "7")
    assert [(s["name"], s["result"], s["attempt"]) for s in steps] == [
        ("work", 10, 1), ("work#2", 30, 2)]
    assert "fingerprint" not in steps[0]


async def test_a_result_held_back_is_kept_only_once_the_run_goes_on(
    client: redis.Redis, prefix: str
) -> None:
    run = log_of(client, prefix, 1)
    await run.record(run.name("provider:chat"), {"reply": 1}, kind="provider", asked="a",
                     accepted=False)
    assert await read_steps(client, prefix, "jobs", "7") == []  # the run may still reject it
    await run.accept()
    assert [s["name"] for s in await read_steps(client, prefix, "jobs", "7")] == [
        "provider:chat"]
