"""Flows from the Python API (`App.enqueue_flow`): a parent that runs once its three children
have, reading their results; a child's failure failing the parent, or ignored, per option;
the records of parent and children following, against real Redis and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
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


class Part(BaseModel):
    n: int = 0
    fail: bool = False


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings, builtin=False)

    @app.job("part", attempts=2, backoff="fixed", backoff_ms=10)
    async def part(ctx: agentqueue.JobContext, data: Part) -> dict[str, int]:
        if data.fail:
            raise RuntimeError(f"part {data.n} broke")
        return {"square": data.n * data.n}

    @app.job("total")
    async def total(ctx: agentqueue.JobContext, data: Part) -> dict[str, Any]:
        results = await ctx.children_results()
        failures = await ctx.children_failures()
        return {"sum": sum(r["square"] for r in results.values()),
                "children": sorted(results), "failed": failures}

    return app


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    made = make_app(settings)
    async with app_worker(made):
        yield made
    await made.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


async def _record(app: agentqueue.App, job: agentqueue.Job, status: str) -> Any:
    backend = await app._backend()

    async def probe() -> Any:
        record = await backend.records.get(job.queue, job.id)
        return record if record is not None and record.status == status else None

    return await eventually(probe, what=f"job {job.id} recorded {status}")


async def test_a_parent_runs_after_its_three_children_and_reads_their_results(
    app: agentqueue.App,
) -> None:
    run = await app.enqueue_flow(agentqueue.Flow("total", {}, children=[
        agentqueue.Flow("part", {"n": n}) for n in (1, 2, 3)], options={"owner": "dana"}))
    assert len(run.children) == 3
    result = await run.job.wait(timeout=30)
    refs = sorted(f"{child.job.queue}:{child.job.id}" for child in run.children)
    assert result == {"sum": 1 + 4 + 9, "children": refs, "failed": {}}
    # Every job of the flow has its record: the children completed before the parent ran.
    parent = await _record(app, run.job, "completed")
    assert parent.type == "total" and parent.user_id == "dana"
    assert parent.result["sum"] == 14
    for child in run.children:
        record = await _record(app, child.job, "completed")
        assert (record.type, record.user_id) == ("part", "dana")  # the parent's owner
    backend = await app._backend()
    history = await backend.records.history(run.job.queue, run.job.id)
    assert [(e.status, e.message) for e in history][:2] == [
        ("pending", None), ("queued", "waiting for 3 child job(s)")]
    assert [e.status for e in history][2:] == ["active", "completed"]


async def test_a_failed_child_fails_its_parent_by_default(app: agentqueue.App) -> None:
    run = await app.enqueue_flow(agentqueue.Flow("total", {}, children=[
        agentqueue.Flow("part", {"n": 1}), agentqueue.Flow("part", {"n": 2, "fail": True})]))
    with pytest.raises(agentqueue.JobFailed) as failed:
        await run.job.wait(timeout=30)
    broken = run.children[1].job
    assert failed.value.reason.endswith(f":{broken.queue}:{broken.id} failed")
    parent = await _record(app, run.job, "failed")
    assert parent.error == failed.value.reason
    child = await _record(app, broken, "failed")
    assert child.error == "part 2 broke" and child.attempts_made == 2
    await _record(app, run.children[0].job, "completed")


async def test_an_ignored_child_failure_lets_the_parent_run(app: agentqueue.App) -> None:
    run = await app.enqueue_flow(agentqueue.Flow("total", {}, children=[
        agentqueue.Flow("part", {"n": 3}),
        agentqueue.Flow("part", {"n": 4, "fail": True}, on_failure="ignore")]))
    result = await run.job.wait(timeout=30)
    ignored = run.children[1].job
    assert result["sum"] == 9
    assert result["failed"] == {f"{ignored.queue}:{ignored.id}": "part 4 broke"}
    await _record(app, run.job, "completed")


async def test_a_bad_node_queues_nothing(app: agentqueue.App) -> None:
    with pytest.raises(agentqueue.InvalidJobInput, match=r"flow\.children\[1\]"):
        await app.enqueue_flow(agentqueue.Flow("total", {}, children=[
            agentqueue.Flow("part", {"n": 1}), agentqueue.Flow("part", {"n": "x"})]))
    with pytest.raises(ValueError, match="job_id"):
        await app.enqueue_flow(agentqueue.Flow("total", {}, options={"job_id": "mine"}))
    backend = await app._backend()
    assert (await backend.records.list_jobs())[1] == 0
    assert sum((await backend.queue("jobs").counts()).values()) == 0


async def test_a_parent_waiting_on_a_failed_child_runs_once_the_child_is_replayed(
    app: agentqueue.App,
) -> None:
    run = await app.enqueue_flow(agentqueue.Flow("total", {}, children=[
        agentqueue.Flow("part", {"n": 2}),
        agentqueue.Flow("part", {"n": 5, "fail": True}, on_failure="wait")]))
    broken = run.children[1].job
    with pytest.raises(agentqueue.JobFailed):
        await broken.wait(timeout=30)
    assert await run.job.status() == "waiting-children"
    await app.replay(broken.queue, broken.id, data={"n": 5})  # a dead letter, replayed
    result = await run.job.wait(timeout=30)
    assert result["sum"] == 4 + 25
    await _record(app, run.job, "completed")
