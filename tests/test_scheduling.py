"""Schedules from Python (`App.schedule` and the seeds' names), against real Redis and SQLite,
with a real worker running the App's types in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from tests.conftest import delete_prefix
from tests.support.waiting import eventually
from tests.support.workers import app_worker


class Report(BaseModel):
    week: str


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    settings = Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
                        AGENTQUEUE_DATA_DIR=str(tmp_path / "data"))
    app = agentqueue.App(settings=settings)

    @app.job("report", attempts=1)
    async def report(ctx: agentqueue.JobContext, data: Report) -> dict[str, Any]:
        return {"week": data.week, "owner": (await ctx.owner()) is not None}

    yield app
    await app.close()
    await asyncio.to_thread(app.close_sync)
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def test_a_cron_schedule_says_its_next_runs_in_its_time_zone(
        app: agentqueue.App) -> None:
    made = await app.schedule("report", {"week": "current"}, cron="0 9 * * 1",
                              tz="America/New_York", schedule_id="monday")
    assert made.id == "monday" and made.cron == "0 9 * * 1" and not made.paused
    runs = made.next_runs(3)
    assert len(runs) == 3 and runs[0] == made.next_run
    for run in runs:
        local = run.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert [s.id for s in await app.schedules()] == ["monday"]
    assert (await app.get_schedule("monday")).next_run == made.next_run


async def test_pause_resume_and_remove(app: agentqueue.App) -> None:
    await app.schedule("report", {"week": "w"}, every_ms=3_600_000, schedule_id="hourly")
    paused = await app.pause_schedule("hourly")
    assert paused.paused and paused.next_run is None
    assert (await app.queue("jobs").counts()).delayed + (
        await app.queue("jobs").counts()).waiting == 0
    resumed = await app.resume_schedule("hourly")
    assert not resumed.paused and resumed.next_run is not None
    assert await app.remove_schedule("hourly")
    with pytest.raises(agentqueue.ScheduleNotFound):
        await app.get_schedule("hourly")


async def test_bad_timing_is_refused_with_a_clear_message(app: agentqueue.App) -> None:
    with pytest.raises(agentqueue.InvalidSchedule, match="unknown time zone"):
        await app.schedule("report", {"week": "w"}, cron="0 9 * * 1", tz="Nowhere/City")
    with pytest.raises(agentqueue.InvalidSchedule, match="not a valid cron expression"):
        await app.schedule("report", {"week": "w"}, cron="0 25 * * *")
    with pytest.raises(agentqueue.InvalidSchedule, match="either cron"):
        await app.schedule("report", {"week": "w"})
    with pytest.raises(agentqueue.InvalidSchedule, match="every"):
        await app.schedule("report", {"week": "w"}, every_ms=0)
    with pytest.raises(agentqueue.InvalidJobInput):
        await app.schedule("report", {"weak": "w"}, every_ms=1000)
    with pytest.raises(TypeError, match="delay_ms"):
        await app.schedule("report", {"week": "w"}, every_ms=1000, delay_ms=5)  # type: ignore[call-arg]
    assert await app.schedules() == []


async def test_runs_are_jobs_with_records_owned_as_the_schedule(app: agentqueue.App) -> None:
    owner = agentqueue.Owner(user_id="u1", org_id="acme")
    await app.schedule("report", {"week": "w1"}, every_ms=200, limit=2, schedule_id="twice",
                       owner=owner)
    async with app_worker(app):
        async def two_done() -> list[agentqueue.Job] | None:
            runs = await app.schedule_runs("twice")
            statuses = [await run.status() for run in runs]
            return runs if statuses == ["completed", "completed"] else None

        runs = await eventually(two_done, what="both runs to complete")
    backend = await app._backend()
    for run in runs:
        assert run.id.startswith("repeat:twice:")
        record = await backend.records.get(run.queue, run.id)
        assert record is not None and record.owner == owner
        assert await run.result() == {"week": "w1", "owner": True}
    assert (await app.get_schedule("twice")).next_run is None  # its limit is reached


async def test_seed_004_repeat_option_and_repeatable_jobs(app: agentqueue.App) -> None:
    first = await app.enqueue("report", {"week": "daily"},
                              repeat={"cron": "0 3 * * *", "tz": "America/New_York"})
    again = await app.enqueue("report", {"week": "daily"},
                              repeat={"cron": "0 3 * * *", "tz": "America/New_York"})
    await app.enqueue("report", {"week": "hourly"}, repeat={"every": 3_600_000})
    assert first.id == again.id and first.id.startswith("repeat:")
    assert await first.status() == "delayed"
    queue = app.queue("jobs")
    repeatable = await queue.get_repeatable_jobs()
    assert {(r["pattern"], r["every"], r["tz"]) for r in repeatable} == {
        ("0 3 * * *", None, "America/New_York"), (None, 3_600_000, None)}
    assert all(isinstance(r["next"], int) and r["name"] == "report" for r in repeatable)
    assert await queue.remove_repeatable_by_key(repeatable[0]["key"])
    assert not await queue.remove_repeatable_by_key(repeatable[0]["key"])
    assert len(await queue.get_repeatable_jobs()) == 1


async def test_seed_002_add_scheduled_task(app: agentqueue.App) -> None:
    tasks = app.queue(app.settings.agent_tasks_queue_name)
    made = await tasks.add_scheduled_task(
        "6f1c0c7e-task", "0 9 * * 1", task={"title": "Monday morning report"},
        schedule_timezone="America/New_York", priority=7)
    assert made.id == "6f1c0c7e-task" and made.type == "agent-task"
    assert made.tz == "America/New_York" and made.data["taskId"] == "6f1c0c7e-task"
    assert made.next_run is not None and made.next_run > datetime.now(UTC)
    with pytest.raises(ValueError, match="runs on queue"):
        await app.queue("jobs").add_scheduled_task("t2", "0 9 * * 1", task={"title": "x"})


def test_sync_twins(app: agentqueue.App) -> None:
    made = app.schedule_sync("report", {"week": "w"}, every_ms=60_000, schedule_id="sync")
    assert [s.id for s in app.schedules_sync()] == [made.id]
    assert app.pause_schedule_sync("sync").paused
    assert app.remove_schedule_sync("sync")
