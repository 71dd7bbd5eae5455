"""The public Python API (`agentqueue.App`) against real Redis and SQLite, with a real worker
running the App's job types in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime, standard_middleware
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.handlers.usage_metering import UsageMetering
from tests.conftest import delete_prefix
from tests.support.waiting import eventually


class Greeting(BaseModel):
    name: str = Field(min_length=1)
    times: int = Field(1, ge=1, le=5)


class Steps(BaseModel):
    total: int


# Released by the test to let the "slow" job finish (per test: a fresh one each time).
gates: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def fresh_gates() -> None:
    """Job ids restart in every test's queue: no gate of an earlier test may be reused."""
    gates.clear()


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings)

    @app.job("greet", attempts=3)
    async def greet(ctx: agentqueue.JobContext, data: Greeting) -> dict[str, Any]:
        return {"greeting": " ".join([f"hello {data.name}"] * data.times),
                "attempt": ctx.attempt}

    @app.job("explode", attempts=2, backoff="fixed", backoff_ms=10)
    async def explode(ctx: agentqueue.JobContext, data: Greeting) -> None:
        raise RuntimeError(f"boom on attempt {ctx.attempt}")

    @app.job("steps")
    async def steps(ctx: agentqueue.JobContext, data: Steps) -> str:
        await ctx.progress(3, data.total, f"Processing item 3 of {data.total}")
        await gates.setdefault(ctx.id, asyncio.Event()).wait()
        return "done"

    @app.job("sleepy", attempts=1, timeout=0.2)
    async def sleepy(ctx: agentqueue.JobContext, data: Steps) -> None:
        await asyncio.Event().wait()  # never set: only the type's timeout ends it

    @app.job("half-progress", attempts=3)
    async def half_progress(ctx: agentqueue.JobContext, data: Steps) -> None:
        await ctx.progress(current=data.total)  # no total: a mistake retrying cannot fix

    return app


@pytest.fixture
async def app(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[agentqueue.App]:
    settings = Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
                        AGENTQUEUE_DATA_DIR=str(tmp_path / "data"))
    app = make_app(settings)
    yield app
    await app.close()
    await asyncio.to_thread(app.close_sync)
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


@pytest.fixture
async def worker(app: agentqueue.App, redis_url: str, prefix: str) -> AsyncIterator[None]:
    """A worker on the App's queue running its types, with records, metering and the
    standard middleware, as `agentqueue worker` runs them."""
    backend = await app._backend()
    client = connect(redis_url)
    options = WorkerOptions(concurrency=4)
    runtime = WorkerRuntime("jobs", redis_url, prefix=prefix, options=options, middleware=[
        RecordsMiddleware(backend.records), UsageMetering(client, prefix=prefix),
        *standard_middleware(options), *app.middleware])
    for definition in app.definitions.values():
        runtime.register(definition.name, definition.run, timeout_s=definition.timeout)
    await runtime.start()
    yield
    await runtime.stop(5)
    await client.aclose()


async def test_bad_input_is_refused_at_enqueue_naming_the_field(app: agentqueue.App) -> None:
    with pytest.raises(agentqueue.InvalidJobInput) as refused:
        await app.enqueue("greet", {"name": "", "times": 9})
    assert isinstance(refused.value, ValueError)
    message = str(refused.value)
    assert "data.name" in message and "data.times" in message
    backend = await app._backend()
    assert sum((await backend.queue("jobs").counts()).values()) == 0
    assert await backend.records.get("jobs", "1") is None


async def test_unknown_type_is_refused(app: agentqueue.App) -> None:
    with pytest.raises(agentqueue.UnknownJobType, match="greet"):
        await app.enqueue("gret", {"name": "x"})


async def test_wait_returns_the_result_and_the_record_follows(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("greet", Greeting(name="ada", times=2), owner="u1")
    assert await job.wait(timeout=30) == {"greeting": "hello ada hello ada", "attempt": 1}
    assert await job.status() == "completed"
    assert await job.result() == {"greeting": "hello ada hello ada", "attempt": 1}
    # A job already finished: wait answers from its state.
    assert (await job.wait(timeout=30))["attempt"] == 1
    backend = await app._backend()

    async def recorded() -> bool:
        record = await backend.records.get(job.queue, job.id)
        return record is not None and record.status == "completed"

    await eventually(recorded, what="the record completed")
    record = await backend.records.get(job.queue, job.id)
    assert record is not None and record.user_id == "u1" and record.type == "greet"


async def test_wait_raises_job_failed_after_the_types_attempts(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("explode", {"name": "x"})
    with pytest.raises(agentqueue.JobFailed) as failed:
        await job.wait(timeout=30)
    assert failed.value.reason == "boom on attempt 2"  # the type's 2 attempts, fixed backoff
    assert await job.status() == "failed"
    with pytest.raises(agentqueue.JobFailed):
        await job.result()


async def test_data_that_fails_the_model_in_the_worker_fails_at_once(
    app: agentqueue.App, worker: None, prefix: str
) -> None:
    # Added by a plain producer, bypassing the App's check: the worker checks again.
    backend = await app._backend()
    raw = JobQueue("jobs", backend.client, prefix=prefix)
    job_id = await raw.add("greet", {"name": 5}, attempts=3)
    job = app.job_handle("jobs", job_id)
    with pytest.raises(agentqueue.JobFailed, match="data.name"):
        await job.wait(timeout=30)
    view = await raw.get(job_id)
    assert view is not None and view.attempts_made == 1  # no retries


async def test_progress_current_total_message_is_visible(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("steps", {"total": 10})
    gate = gates.setdefault(job.id, asyncio.Event())  # the handler may get there first

    async def reported() -> Any:
        return await job.progress()

    progress = await eventually(reported, what="progress")
    assert progress == {"current": 3, "total": 10, "percent": 30.0,
                        "message": "Processing item 3 of 10"}
    assert await job.status() == "active"
    with pytest.raises(agentqueue.JobNotFinished):
        await job.result()
    gate.set()
    assert await job.wait(timeout=30) == "done"


async def test_wait_times_out_and_cancel_fails_the_job(app: agentqueue.App) -> None:
    job = await app.enqueue("greet", {"name": "x"}, delay_ms=60_000)  # no worker anyway
    with pytest.raises(TimeoutError):
        await job.wait(timeout=0.2)
    assert await job.status() == "delayed"
    waiting = asyncio.create_task(job.wait(timeout=30))
    assert await job.cancel() is True
    with pytest.raises(agentqueue.JobFailed, match="Cancelled"):
        await waiting
    assert await job.status() == "cancelled"
    assert await job.cancel() is False


async def test_sync_calls_work_from_a_thread_without_a_loop(
    app: agentqueue.App, worker: None
) -> None:
    def flask_view() -> tuple[Any, str]:
        with pytest.raises(agentqueue.InvalidJobInput):
            app.enqueue_sync("greet", {"name": ""})
        job = app.enqueue_sync("greet", {"name": "bob"}, priority=9)
        return job.wait_sync(timeout=30), job.status_sync()

    result, status = await asyncio.to_thread(flask_view)
    assert result == {"greeting": "hello bob", "attempt": 1}
    assert status == "completed"


async def test_sync_call_inside_a_running_loop_is_refused(app: agentqueue.App) -> None:
    with pytest.raises(RuntimeError, match="await the async form"):
        app.enqueue_sync("greet", {"name": "x"})


def test_a_handler_needs_an_input_model(tmp_path: Path) -> None:
    app = agentqueue.App(settings=Settings(AGENTQUEUE_DATA_DIR=str(tmp_path)))
    with pytest.raises(TypeError, match="pydantic model"):
        @app.job("untyped")
        async def untyped(ctx: agentqueue.JobContext, data: dict[str, Any]) -> None: ...
    with pytest.raises(ValueError, match="built in"):
        app.job("webhook")
    with pytest.raises(ValueError, match="priority"):
        app.job("too-urgent", priority=11)


async def test_a_types_timeout_fails_its_job(app: agentqueue.App, worker: None) -> None:
    job = await app.enqueue("sleepy", {"total": 1})
    with pytest.raises(agentqueue.JobFailed, match=r"timed out after 0\.2s"):
        await job.wait(timeout=30)


async def test_progress_needs_a_percentage_or_current_and_total(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("half-progress", {"total": 4})
    with pytest.raises(agentqueue.JobFailed, match="current and total"):
        await job.wait(timeout=30)
