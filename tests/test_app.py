"""The public Python API (`agentqueue.App`) against real Redis and SQLite, with a real worker
running the App's job types in this process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError

import agentqueue
from agentqueue.config import Settings
from agentqueue.core.submission import NotQueued
from agentqueue.engine.connection import connect
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import WorkerRuntime
from agentqueue.handlers.metering import CallRecord, JobMeter
from agentqueue.handlers.streaming import TextProgress
from tests.conftest import delete_prefix
from tests.support.waiting import eventually
from tests.support.workers import app_worker


class Greeting(BaseModel):
    name: str = Field(min_length=1)
    times: int = Field(1, ge=1, le=5)


class Steps(BaseModel):
    total: int


class Chat(BaseModel):
    fail_first: bool = False


# Job ids whose "flaky" job may succeed (set by the test before a retry).
flaky_ok: set[str] = set()


# Released by the test to let the "slow" job finish (per test: a fresh one each time).
gates: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def fresh_gates() -> None:
    """Job ids restart in every test's queue: no gate of an earlier test may be reused."""
    gates.clear()
    flaky_ok.clear()


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

    @app.job("nap", attempts=1)
    async def nap(ctx: agentqueue.JobContext, data: Steps) -> None:
        await asyncio.Event().wait()  # never set: only the job's own timeout ends it

    @app.job("flaky", attempts=1)
    async def flaky(ctx: agentqueue.JobContext, data: Steps) -> str:
        if ctx.id not in flaky_ok:
            raise RuntimeError("not yet")
        return f"ran {data.total}"

    @app.job("chatty", attempts=2, backoff="fixed", backoff_ms=10)
    async def chatty(ctx: agentqueue.JobContext, data: Chat) -> str:
        # Streams a word at a time until the test, having heard one, opens the gate: so a
        # follower that starts late still hears the stream.
        gate = gates.setdefault(ctx.id, asyncio.Event())
        stream = TextProgress(ctx, interval=0)
        words = 0
        while not gate.is_set():
            words += 1
            await stream(f"w{words} ")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gate.wait(), 0.05)
        if data.fail_first and ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        await ctx.progress(100)
        return "chatted"

    @app.job("spender", attempts=1)
    async def spender(ctx: agentqueue.JobContext, data: Steps) -> dict[str, str]:
        # What a metered provider call writes to the job's usage ledger.
        client = connect(settings.external_redis_url or "")
        try:
            meter = JobMeter(client, prefix=settings.queue_prefix, queue=ctx.queue, job_id=ctx.id)
            await meter.record("call-1", CallRecord(provider="openai", model="gpt-4o-mini",
                                                    input_tokens=data.total, output_tokens=5,
                                                    cost_usd=0.25, priced=True))
        finally:
            await client.aclose()
        return {"provider": "openai", "model": "gpt-4o-mini"}

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
async def worker(app: agentqueue.App) -> AsyncIterator[None]:
    """A worker on the App's queue running its types, as `agentqueue worker` runs them."""
    async with app_worker(app):
        yield


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


# -- enqueue options ----------------------------------------------------------------------------


async def stored_options(app: agentqueue.App, job: agentqueue.Job) -> dict[str, Any]:
    """The BullMQ options Redis keeps with the job (what a Node or Python worker reads)."""
    backend = await app._backend()
    raw = await backend.client.hget(f"{app.settings.queue_prefix}:{job.queue}:{job.id}", "opts")
    assert raw is not None
    return cast(dict[str, Any], json.loads(raw))


async def test_a_delayed_job_does_not_run_before_a_later_one(
    app: agentqueue.App, worker: None
) -> None:
    later = await app.enqueue("greet", {"name": "later"}, delay_ms=60_000)
    now = await app.enqueue("greet", {"name": "now"})
    assert (await now.wait(timeout=30))["greeting"] == "hello now"
    assert await later.status() == "delayed"
    assert await later.attempts() == 0


async def test_timeout_and_lifespan_are_stored_as_bullmq_options(app: agentqueue.App) -> None:
    before_ms = int(time.time() * 1000)
    job = await app.enqueue("greet", {"name": "x"}, timeout=1.5, lifespan=600,
                            delay_ms=1000, attempts=4, backoff="fixed", backoff_ms=250)
    after_ms = int(time.time() * 1000) + 1
    opts = await stored_options(app, job)
    assert opts["timeout"] == 1500  # milliseconds, Bull 3's name
    assert before_ms + 600_000 <= opts["expiresAt"] <= after_ms + 600_000  # epoch ms
    assert (opts["attempts"], opts["backoff"], opts["delay"]) == (
        4, {"type": "fixed", "delay": 250}, 1000)
    at = datetime.now(UTC) + timedelta(hours=1)
    other = await app.enqueue("greet", {"name": "y"}, expires_at=at)
    assert (await stored_options(app, other))["expiresAt"] == round(at.timestamp() * 1000)
    with pytest.raises(ValueError, match="expire before it could start"):
        await app.enqueue("greet", {"name": "z"}, lifespan=1, delay_ms=5_000)
    with pytest.raises(ValueError, match="not both"):
        await app.enqueue("greet", {"name": "z"}, lifespan=1, expires_at=at)


async def test_a_jobs_own_timeout_fails_it(app: agentqueue.App, worker: None) -> None:
    job = await app.enqueue("nap", {"total": 1}, timeout=0.2)
    with pytest.raises(agentqueue.JobFailed, match=r"timed out after 0\.2s"):
        await job.wait(timeout=30)
    assert await job.error() == "job timed out after 0.2s"


async def test_the_same_job_id_twice_is_one_job(app: agentqueue.App) -> None:
    first = await app.enqueue("greet", {"name": "ada"}, job_id="order-42", delay_ms=60_000)
    again = await app.enqueue("greet", {"name": "bob"}, job_id="order-42", delay_ms=60_000)
    assert (first.id, first.existing) == ("order-42", False)
    assert (again.id, again.existing) == ("order-42", True)
    backend = await app._backend()
    assert (await backend.queue("jobs").counts())["delayed"] == 1
    record = await backend.records.get("jobs", "order-42")
    assert record is not None and record.data == {"name": "ada", "times": 1}
    # Numbered ids stay agentqueue's: the custom one left no gap, and a number is refused.
    assert (await app.enqueue("greet", {"name": "c"})).id == "1"
    with pytest.raises(ValueError, match="not a number"):
        await app.enqueue("greet", {"name": "d"}, job_id="2")
    with pytest.raises(ValueError, match="job_id"):
        await app.enqueue("greet", {"name": "d"}, job_id="a:b")


async def test_a_dedup_key_gives_the_job_that_holds_it(app: agentqueue.App, worker: None) -> None:
    job = await app.enqueue("chatty", {}, dedup_key="report-7")
    same = await asyncio.gather(*(app.enqueue("chatty", {}, dedup_key="report-7")
                                  for _ in range(5)))
    assert {handle.id for handle in same} == {job.id}
    assert all(handle.existing for handle in same)
    backend = await app._backend()
    assert (await backend.records.list_jobs(queues=["jobs"]))[1] == 1  # no stray record
    gates.setdefault(job.id, asyncio.Event()).set()
    assert await job.wait(timeout=30) == "chatted"
    # Finished: the key is free again.
    after = await app.enqueue("chatty", {}, dedup_key="report-7")
    assert after.id != job.id and not after.existing
    gates.setdefault(after.id, asyncio.Event()).set()
    await after.wait(timeout=30)


async def test_keep_completed_0_drops_the_job_from_redis_and_the_record_answers(
    app: agentqueue.App, worker: None
) -> None:
    kept = await app.enqueue("greet", {"name": "x"}, keep_completed=0,
                             keep_failed=timedelta(hours=1), delay_ms=60_000)
    assert (await stored_options(app, kept))["removeOnComplete"] == 0
    assert (await stored_options(app, kept))["removeOnFail"] == {"age": 3600}
    job = await app.enqueue("greet", {"name": "ada"}, keep_completed=0)
    assert (await job.wait(timeout=30))["greeting"] == "hello ada"
    backend = await app._backend()
    assert await backend.queue("jobs").get(job.id) is None

    async def recorded() -> bool:
        record = await backend.records.get(job.queue, job.id)
        return record is not None and record.status == "completed"

    await eventually(recorded, what="the record completed")
    assert await job.status() == "completed"
    assert (await job.result())["greeting"] == "hello ada"
    assert await job.wait(timeout=30) == await job.result()


async def test_bad_options_are_refused_before_anything_is_queued(app: agentqueue.App) -> None:
    with pytest.raises(TypeError, match="unknown enqueue option"):
        await app.enqueue("greet", {"name": "x"}, delay=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="attempts"):
        await app.enqueue("greet", {"name": "x"}, attempts=0)
    with pytest.raises(ValueError, match="not both"):
        await app.enqueue("greet", {"name": "x"}, priority=3, bullmq_priority=3)
    backend = await app._backend()
    assert sum((await backend.queue("jobs").counts()).values()) == 0


async def test_bulk_enqueue_with_one_bad_job_queues_none(app: agentqueue.App) -> None:
    with pytest.raises(agentqueue.InvalidJobInput, match=r"job 1: greet: data\.name"):
        await app.enqueue_many([("greet", {"name": "a"}), ("greet", {"name": ""}),
                                ("greet", {"name": "c"})])
    backend = await app._backend()
    assert sum((await backend.queue("jobs").counts()).values()) == 0
    assert (await backend.records.list_jobs(queues=["jobs"]))[1] == 0


async def test_bulk_enqueue_runs_each_with_its_options(app: agentqueue.App, worker: None) -> None:
    jobs = await app.enqueue_many([
        ("greet", {"name": "a"}),
        ("greet", Greeting(name="b", times=2), {"priority": 9, "owner": "u2"}),
        ("greet", {"name": "c"}, {"delay_ms": 60_000}),
    ])
    assert [(await job.wait(timeout=30))["greeting"] for job in jobs[:2]] == [
        "hello a", "hello b hello b"]
    assert await jobs[2].status() == "delayed"
    backend = await app._backend()
    record = await backend.records.get("jobs", jobs[1].id)
    assert record is not None and record.user_id == "u2" and record.priority == 600


# -- the job handle -------------------------------------------------------------------------


async def test_retry_of_a_failed_job_runs_it_again_with_its_priority(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("flaky", {"total": 3}, priority=9)
    with pytest.raises(agentqueue.JobFailed, match="not yet"):
        await job.wait(timeout=30)
    assert await job.error() == "not yet"
    assert await job.attempts() == 1
    with pytest.raises(agentqueue.JobNotRetryable):
        await (await app.enqueue("greet", {"name": "x"}, delay_ms=60_000)).retry()
    flaky_ok.add(job.id)
    await job.retry()
    assert await job.wait(timeout=30) == "ran 3"
    backend = await app._backend()
    view = await backend.queue("jobs").get(job.id)
    assert view is not None and view.priority == 600  # seed 002's 9
    assert await job.error() is None
    with pytest.raises(agentqueue.JobNotRetryable, match="only failed jobs"):
        await job.retry()


async def test_retry_of_a_cancelled_job_keeps_its_priority(app: agentqueue.App) -> None:
    job = await app.enqueue("greet", {"name": "x"}, priority=2, delay_ms=60_000)
    assert await job.cancel() is True
    assert await job.error() == "Cancelled by user"
    await job.retry()
    assert await job.status() == "prioritized"
    backend = await app._backend()
    view = await backend.queue("jobs").get(job.id)
    assert view is not None and view.priority == 1300  # seed 002's 2


async def test_events_yield_streamed_text_and_progress_then_completed(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("chatty", {})
    kinds = []
    async for event in job.events(timeout=30):
        kinds.append(event.kind)
        if event.kind == "text":
            assert event.text is not None and event.text.startswith("w1 ")
            gates.setdefault(job.id, asyncio.Event()).set()
        if event.kind == "progress":
            assert event.progress == 100
        if event.kind == "completed":
            assert event.result == "chatted" and event.final
    assert kinds[-2:] == ["progress", "completed"]
    # A finished job's events: its outcome alone.
    assert [event.kind async for event in job.events()] == ["completed"]


async def test_events_yield_every_streamed_delta_in_order_before_the_outcome(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("chatty", {})
    deltas: list[agentqueue.JobEvent] = []
    kinds = []
    async for event in job.events(timeout=30):
        kinds.append(event.kind)
        if event.kind == "delta":
            deltas.append(event)
            if len(deltas) == 3:
                gates.setdefault(job.id, asyncio.Event()).set()
    assert kinds[-1] == "completed" and len(deltas) >= 3
    # Not one piece lost or repeated, however the progress writes were coalesced.
    first = int((deltas[0].text or "").strip()[1:])
    assert [d.text for d in deltas] == [f"w{n} " for n in range(first, first + len(deltas))]
    for before, after in itertools.pairwise(deltas):
        assert after.offset == (before.offset or 0) + len(before.text or "")
    assert all(d.attempt == 1 for d in deltas)


async def test_events_tell_of_a_retry_and_usage_is_zero_without_ai(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("chatty", {"fail_first": True})
    kinds = []
    async for event in job.events(timeout=30):
        kinds.append(event.kind)
        if event.kind == "text":
            gates.setdefault(job.id, asyncio.Event()).set()
    assert "retrying" in kinds and kinds[-1] == "completed"
    assert kinds.index("retrying") < kinds.index("completed")
    assert await job.attempts() == 2
    assert await job.usage() == agentqueue.RecordedUsage()


async def test_sync_forms_work_from_a_plain_thread(app: agentqueue.App, worker: None) -> None:
    def script() -> tuple[list[str], Any, str | None, int, list[str]]:
        assert threading.current_thread() is not threading.main_thread()
        jobs = app.enqueue_many_sync([("greet", {"name": "a"}), ("flaky", {"total": 1})])
        first = jobs[0].wait_sync(timeout=30)
        with pytest.raises(agentqueue.JobFailed):
            jobs[1].wait_sync(timeout=30)
        flaky_ok.add(jobs[1].id)
        jobs[1].retry_sync()
        kinds = [event.kind for event in jobs[1].events_sync(timeout=30)]
        return kinds, first, jobs[0].error_sync(), jobs[1].attempts_sync(), [
            job.status_sync() for job in jobs]

    kinds, first, error, attempts, states = await asyncio.to_thread(script)
    assert kinds[-1] == "completed"
    assert first["greeting"] == "hello a" and error is None and attempts == 1
    assert states == ["completed", "completed"]


async def test_wait_hears_a_job_redis_dropped_before_its_record_caught_up(
    app: agentqueue.App, redis_url: str, prefix: str
) -> None:
    # A worker that keeps no records: Redis drops the job on completion (keep_completed=0) and
    # its record stays `queued`, as it is for a moment when the record follower lags.
    runtime = WorkerRuntime("jobs", redis_url, prefix=prefix)
    runtime.register("greet", app.definitions["greet"].run)
    job = await app.enqueue("greet", {"name": "ada"}, keep_completed=0)
    await runtime.start()
    try:
        backend = await app._backend()

        async def dropped() -> bool:
            return await backend.queue("jobs").get(job.id) is None

        await eventually(dropped, what="the job dropped from Redis")
        assert (await job.wait(timeout=10))["greeting"] == "hello ada"
        assert [event.kind async for event in job.events(timeout=10)] == ["completed"]
    finally:
        await runtime.stop(5)


async def test_usage_is_the_tokens_and_cost_recorded_for_the_job(
    app: agentqueue.App, worker: None
) -> None:
    job = await app.enqueue("spender", {"total": 12})
    await job.wait(timeout=30)

    async def used() -> agentqueue.RecordedUsage | None:
        usage = await job.usage()
        return usage if usage.input_tokens else None

    assert await eventually(used, what="usage recorded") == agentqueue.RecordedUsage(
        input_tokens=12, output_tokens=5, cost_usd=0.25, provider="openai", model="gpt-4o-mini")
    with pytest.raises(agentqueue.JobNotFound):
        await app.job_handle("jobs", "nope").usage()


async def test_many_waiting_handles_share_one_events_reader(
    app: agentqueue.App, worker: None
) -> None:
    # More waits than the App's Redis pool has connections (50): were each to hold a blocking
    # read, nothing else could reach Redis.
    pending = [await app.enqueue("greet", {"name": f"n{i}"}, delay_ms=600_000)
               for i in range(60)]
    waits = [asyncio.create_task(job.wait(timeout=60)) for job in pending]
    backend = await app._backend()

    async def all_following() -> bool:
        return len(backend.events("jobs").subscriptions) == 60

    await eventually(all_following, what="60 followers")
    job = await asyncio.wait_for(app.enqueue("greet", {"name": "ada"}), 10)
    assert (await asyncio.wait_for(job.wait(), 10))["greeting"] == "hello ada"
    for job in pending[:3]:
        assert await job.cancel() is True
    for wait in waits[:3]:
        with pytest.raises(agentqueue.JobFailed, match="Cancelled"):
            await wait
    for wait in waits[3:]:
        wait.cancel()
    await asyncio.gather(*waits[3:], return_exceptions=True)
    assert not backend.events("jobs").subscriptions


class RefusingQueue(JobQueue):
    """A queue whose second add finds Redis refusing connections (nothing was sent)."""

    adds = 0

    async def add(self, name: str, data: Any, **options: Any) -> str:
        self.adds += 1
        if self.adds == 2:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. "
                                       "Connection refused.")
        return await super().add(name, data, **options)


async def test_bulk_enqueue_failing_part_way_says_which_jobs_were_queued(
    app: agentqueue.App, prefix: str
) -> None:
    backend = await app._backend()
    backend.queues["jobs"] = RefusingQueue("jobs", backend.client, prefix=prefix)
    with pytest.raises(agentqueue.BulkEnqueueError) as failed:
        await app.enqueue_many([("greet", {"name": n}) for n in "abc"])
    assert [job.id for job in failed.value.queued] == ["1"]
    assert isinstance(failed.value.__cause__, NotQueued)
    assert sum((await backend.queue("jobs").counts()).values()) == 1
    assert (await backend.records.list_jobs(queues=["jobs"]))[1] == 1  # the others: no record
