"""The `workflow-execution` job type from Python, against real Redis and SQLite: steps run as
child jobs in dependency order with earlier results filled in, on their own types' queues,
owned by the workflow's owner; a failing step fails the workflow or is skipped; definitions
that can never run are refused before anything is queued."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.errors import InvalidJobInput
from agentqueue.services import build_workers
from agentqueue.serving import serve
from tests.conftest import delete_prefix
from tests.support.waiting import eventually


class Text(BaseModel):
    text: str
    fail: bool = False


class Words(BaseModel):
    words: list[str]
    joiner: str = " "


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings)

    @app.job("wf-upper", attempts=2, backoff="fixed", backoff_ms=10)
    async def upper(ctx: agentqueue.JobContext, data: Text) -> dict[str, Any]:
        if data.fail:
            raise RuntimeError(f"cannot shout {data.text!r}")
        return {"text": data.text.upper(), "words": data.text.upper().split()}

    @app.job("wf-join")
    async def join(ctx: agentqueue.JobContext, data: Words) -> dict[str, Any]:
        return {"text": data.joiner.join(reversed(data.words))}

    return app


@contextlib.asynccontextmanager
async def running(redis_url: str, prefix: str, tmp_path: Path,
                  queues: tuple[str, ...] = ("jobs", "ai-jobs"),
                  extra: Callable[[agentqueue.App], None] | None = None,
                  ) -> AsyncIterator[agentqueue.App]:
    """The App's types and the built-in ones served and accepted here, a worker on `queues`."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    app = make_app(settings)
    if extra is not None:
        extra(app)
    app.install()
    backend = await app._backend()
    group = build_workers(app.settings.model_copy(update={"queue_concurrency": 4}), redis_url,
                          list(queues), records=backend.records, registry=app.types())
    await group.start()
    try:
        yield app
    finally:
        await group.stop(5)
        await app.close()
        serve(None)
        conn = connect(redis_url)
        await delete_prefix(conn, prefix)
        await conn.aclose()


ALICE = agentqueue.Owner(user_id="alice", org_id="acme")

PIPELINE = {
    "name": "shout-and-reverse",
    "steps": [
        {"id": "shout", "type": "wf-upper", "input": {"text": {"$ref": "input.text"}}},
        {"id": "feel", "type": "sentiment", "input": {"text": {"$ref": "input.text"}}},
        {"id": "reverse", "type": "wf-join",
         "input": {"words": {"$ref": "steps.shout.result.words"}, "joiner": "-"},
         "dependsOn": ["feel"]},
    ],
}


async def test_steps_run_in_order_with_earlier_results(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with running(redis_url, prefix, tmp_path) as app:
        job = await app.enqueue("workflow-execution",
                                {"workflow": PIPELINE, "input": {"text": "what a great day"}},
                                owner=ALICE)
        result = await job.wait(timeout=30)
        steps = result["steps"]
        assert result["status"] == "completed" and result["completed"] == 3
        assert steps["shout"]["result"]["text"] == "WHAT A GREAT DAY"
        assert steps["reverse"]["result"] == {"text": "DAY-GREAT-A-WHAT"}
        assert steps["feel"]["result"]["sentiment"] == "positive"
        # Each step is a job of its own type, on that type's queue, the workflow owner's.
        assert steps["feel"]["jobId"].startswith("ai-jobs:")
        assert steps["shout"]["jobId"].startswith("jobs:wf-")
        backend = await app._backend()
        for step in steps.values():
            queue, _, job_id = step["jobId"].partition(":")

            async def recorded(queue: str = queue, job_id: str = job_id) -> Any:
                # The record follows Redis (written behind the step's completion).
                record = await backend.records.get(queue, job_id)
                return record if record is not None and record.status == "completed" else None

            record = await eventually(recorded, what=f"the record of step {job_id}")
            assert record.owner == ALICE
        progress = await job.progress()
        assert progress["current"] == 3 and progress["total"] == 3


async def test_a_failed_step_fails_the_workflow_or_is_skipped(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    def workflow(on_failure: str) -> dict[str, Any]:
        return {"name": "fragile", "steps": [
            {"id": "ok", "type": "wf-upper", "input": {"text": "fine"}},
            {"id": "broken", "type": "wf-upper", "input": {"text": "no", "fail": True},
             "onFailure": on_failure},
            {"id": "after", "type": "wf-join",
             "input": {"words": {"$ref": "steps.broken.result.words"}}},
            {"id": "independent", "type": "wf-join",
             "input": {"words": {"$ref": "steps.ok.result.words"}}},
        ]}

    async with running(redis_url, prefix, tmp_path, ("jobs",)) as app:
        failing = await app.enqueue("workflow-execution", {"workflow": workflow("fail")})
        with pytest.raises(agentqueue.JobFailed) as failed:
            await failing.wait(timeout=30)
        assert "step 'broken' (wf-upper) failed" in str(failed.value)
        assert "cannot shout 'no'" in str(failed.value)
        log = await (await app._backend()).queue("jobs").logs(failing.id)
        assert any(line.startswith("steps: ") and "broken failed" in line for line in log), log

        skipping = await app.enqueue("workflow-execution", {"workflow": workflow("skip")})
        result = await skipping.wait(timeout=30)
        steps = result["steps"]
        assert steps["broken"]["status"] == "failed"
        assert "cannot shout 'no'" in steps["broken"]["error"]
        # What needs the skipped step is skipped (never queued); the rest runs.
        assert steps["after"] == {"status": "skipped", "type": "wf-join", "jobId": None,
                                  "error": "step 'broken' failed"}
        assert steps["independent"]["result"] == {"text": "FINE"}
        assert (result["completed"], result["failed"], result["skipped"]) == (2, 1, 1)


@pytest.mark.parametrize(("steps", "expected"), [
    ([{"id": "a", "type": "wf-upper", "input": {"text": "x"}, "dependsOn": ["b"]},
      {"id": "b", "type": "wf-upper", "input": {"text": "x"}, "dependsOn": ["a"]}],
     "cycle"),
    ([{"id": "a", "type": "wf-upper", "input": {"text": {"$ref": "steps.nope.result"}}}],
     "depends on unknown step(s) nope"),
    ([{"id": "a", "type": "no-such-type"}], "unknown job type 'no-such-type'"),
    ([{"id": "a", "type": "wf-upper", "input": {}}], "data.text: is required"),
    ([{"id": "a", "type": "wf-upper", "input": {"text": 3}}], "data.text"),
    ([{"id": "a", "type": "wf-upper", "input": {"text": {"$ref": "input.missing"}}}],
     "reference 'input.missing': nothing at 'missing'"),
    ([{"id": "a", "type": "wf-upper", "input": {"text": "x"}},
      {"id": "a", "type": "wf-upper", "input": {"text": "y"}}], "step ids must be unique"),
    ([{"id": "a", "type": "workflow-execution"}], "unknown job type 'workflow-execution'"),
])
async def test_definitions_that_can_never_run_are_refused(
    redis_url: str, prefix: str, tmp_path: Path, steps: list[dict[str, Any]], expected: str
) -> None:
    async with running(redis_url, prefix, tmp_path, ("jobs",)) as app:
        with pytest.raises(InvalidJobInput) as refused:
            await app.enqueue("workflow-execution",
                              {"workflow": {"name": "bad", "steps": steps}, "input": {}})
        assert expected in str(refused.value)


async def test_a_cancelled_workflow_queues_no_further_step(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    release = asyncio.Event()

    def add_gate(app: agentqueue.App) -> None:
        @app.job("wf-gate")
        async def gate(ctx: agentqueue.JobContext, data: Text) -> dict[str, Any]:
            await release.wait()
            return {"text": data.text}

    async with running(redis_url, prefix, tmp_path, ("jobs",), extra=add_gate) as app:
        job = await app.enqueue("workflow-execution", {"workflow": {"name": "gated", "steps": [
            {"id": "first", "type": "wf-gate", "input": {"text": "a"}},
            {"id": "then", "type": "wf-upper",
             "input": {"text": {"$ref": "steps.first.result.text"}}}]}})

        async def first_step_runs() -> Any:
            progress = await job.progress()
            return isinstance(progress, dict) and "running: first" in progress.get("message", "")

        await eventually(first_step_runs, what="the first step to run")
        assert await job.cancel()
        release.set()  # the step running finishes; nothing after it is queued
        with pytest.raises(agentqueue.JobFailed) as failed:
            await job.wait(timeout=30)
        assert "Cancelled by user" in str(failed.value)
        backend = await app._backend()

        async def recorded_cancelled() -> Any:
            record = await backend.records.get(job.queue, job.id)
            return record is not None and record.status == "cancelled"

        await eventually(recorded_cancelled, what="the workflow's record cancelled")
        jobs, _ = await backend.records.list_jobs()
        assert sorted(r.type for r in jobs) == ["wf-gate", "workflow-execution"]


async def test_a_scheduled_workflow_runs_as_a_workflow(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with running(redis_url, prefix, tmp_path) as app:
        schedule = await app.schedule(
            "workflow-execution", {"workflow": PIPELINE, "input": {"text": "good news"}},
            every_ms=500, limit=2, owner=ALICE)

        async def two_runs_done() -> Any:
            runs = await app.schedule_runs(schedule.id)
            done = [run for run in runs if await run.status() == "completed"]
            return done if len(done) == 2 else None

        for run in await eventually(two_runs_done, timeout=60, what="two scheduled runs"):
            result = await run.result()
            assert result["steps"]["reverse"]["result"] == {"text": "NEWS-GOOD"}


async def test_a_failed_workflow_retried_runs_what_failed_again(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    broken = {"now": True}
    runs: list[str] = []

    def add_flaky(app: agentqueue.App) -> None:
        @app.job("wf-flaky", attempts=1)
        async def flaky(ctx: agentqueue.JobContext, data: Text) -> dict[str, Any]:
            runs.append(data.text)
            if broken["now"]:
                raise RuntimeError("not yet")
            return {"text": data.text.upper(), "words": [data.text]}

    async with running(redis_url, prefix, tmp_path, ("jobs",), extra=add_flaky) as app:
        job = await app.enqueue("workflow-execution", {"workflow": {"name": "flaky", "steps": [
            {"id": "steady", "type": "wf-upper", "input": {"text": "zero"}},
            {"id": "first", "type": "wf-flaky", "input": {"text": "one"}, "dependsOn": ["steady"]},
            {"id": "second", "type": "wf-flaky", "input": {"text": "two"},
             "dependsOn": ["first"]}]}})
        with pytest.raises(agentqueue.JobFailed):
            await job.wait(timeout=30)
        assert runs == ["one"]  # the first failed: the second never ran
        steady = [r for r in (await (await app._backend()).records.list_jobs())[0]
                  if r.type == "wf-upper"]
        broken["now"] = False
        await job.retry()

        async def completed() -> Any:
            return await job.status() == "completed"

        await eventually(completed, what="the retried workflow to complete")
        result = await job.result()
        assert runs == ["one", "one", "two"]  # what failed, and what never ran, ran again
        assert "-r1-first" in result["steps"]["first"]["jobId"]
        # What completed is kept: the same job, not run again.
        assert result["steps"]["steady"]["jobId"] == f"jobs:{steady[0].job_id}"
        assert result["steps"]["steady"]["result"]["text"] == "ZERO"
        assert result["steps"]["second"]["result"] == {"text": "TWO", "words": ["two"]}
