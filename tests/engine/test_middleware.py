"""Worker middleware against a real Redis: a user's hooks run in order around each job, outcome
hooks in reverse order once Redis has the outcome, and a hook that raises never loses a job."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agentqueue import Middleware
from agentqueue.engine.context import JobContext, PermanentJobError
from agentqueue.engine.middleware import CallNext
from agentqueue.engine.queue import JobQueue
from tests.support.waiting import eventually
from tests.support.workers import StartWorker, finished


class Recorder(Middleware):
    """Writes each hook it sees to a shared list, with the job's state in Redis at that time."""

    def __init__(self, name: str, events: list[Any], queue: JobQueue) -> None:
        self.name = name
        self.events = events
        self.queue = queue

    async def before_job(self, ctx: JobContext) -> None:
        self.events.append(f"{self.name}.before")

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        self.events.append(f"{self.name}.run>")
        try:
            return await call_next()
        finally:
            self.events.append(f"{self.name}.run<")

    async def on_progress(self, ctx: JobContext, progress: Any) -> None:
        self.events.append(f"{self.name}.progress {progress}")

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        view = await self.queue.get(ctx.id)
        self.events.append(f"{self.name}.after {result} ({view.state if view else None})")

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        view = await self.queue.get(ctx.id)
        state = view.state if view else None
        self.events.append(f"{self.name}.failure {error} retry={will_retry} ({state})")


async def until_length(events: list[Any], n: int) -> None:
    async def enough() -> bool:
        return len(events) >= n

    await eventually(enough, what=f"{n} hook calls; have {events}")


async def test_a_users_hooks_run_in_order_around_a_job(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    events: list[Any] = []

    async def handler(ctx: JobContext) -> str:
        await ctx.progress(50)
        events.append("handler")
        return "done"

    await start_worker({"work": handler}, [Recorder("a", events, mw_queue),
                                           Recorder("b", events, mw_queue)])
    await finished(mw_queue, await mw_queue.add("work", {}))
    await until_length(events, 11)
    assert events == [
        "a.before", "b.before",  # in list order
        "a.run>", "b.run>",  # the first is the outermost wrapper
        "a.progress 50", "b.progress 50", "handler",
        "b.run<", "a.run<",
        # in reverse order, once Redis has the result
        "b.after done (completed)", "a.after done (completed)",
    ]


async def test_failure_hooks_run_in_reverse_and_say_whether_the_job_will_retry(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    events: list[Any] = []

    async def broken(ctx: JobContext) -> None:
        raise RuntimeError(f"boom {ctx.attempt}")

    await start_worker({"broken": broken}, [Recorder("a", events, mw_queue),
                                            Recorder("b", events, mw_queue)])
    view = await finished(mw_queue, await mw_queue.add("broken", {}, attempts=2))
    assert view.attempts_made == 2
    await until_length(events, 16)
    failures = [e for e in events if ".failure" in e]
    assert [f.split(" (")[0] for f in failures] == [
        "b.failure boom 1 retry=True", "a.failure boom 1 retry=True",
        "b.failure boom 2 retry=False", "a.failure boom 2 retry=False",
    ]
    assert failures[-1].endswith("(failed)")


async def test_a_before_hook_raising_permanent_job_error_fails_the_job_without_retry(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    events: list[Any] = []
    ran: list[str] = []

    class Gatekeeper(Middleware):
        async def before_job(self, ctx: JobContext) -> None:
            raise PermanentJobError("refused by the gatekeeper")

    async def handler(ctx: JobContext) -> None:
        ran.append(ctx.id)

    later = Recorder("later", events, mw_queue)
    await start_worker({"work": handler}, [Gatekeeper(), later])
    view = await finished(mw_queue, await mw_queue.add("work", {}, attempts=3))
    assert (view.state, view.failed_reason, view.attempts_made) == (
        "failed", "refused by the gatekeeper", 1)
    assert ran == []
    # Neither the later before hooks nor its wrapper ran; its failure hook still does.
    await until_length(events, 1)
    assert events == ["later.failure refused by the gatekeeper retry=False (failed)"]


async def test_other_hook_errors_are_logged_and_never_fail_or_lose_the_job(
    mw_queue: JobQueue, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = []

    class Clumsy(Middleware):
        async def before_job(self, ctx: JobContext) -> None:
            raise RuntimeError("records database unreachable")

        async def on_progress(self, ctx: JobContext, progress: Any) -> None:
            raise RuntimeError("progress store unreachable")

        async def after_job(self, ctx: JobContext, result: Any) -> None:
            raise RuntimeError("after hook broke")

    async def handler(ctx: JobContext) -> str:
        await ctx.progress(10)
        return "still done"

    # Clumsy is first in the list: its after hook runs last, after the Recorder's.
    await start_worker({"work": handler}, [Recorder("a", events, mw_queue), Clumsy(),
                                           Recorder("b", events, mw_queue)])
    with caplog.at_level(logging.WARNING, logger="agentqueue.worker"):
        view = await finished(mw_queue, await mw_queue.add("work", {}, attempts=3))
        await until_length(events, 10)

        async def logged_after_error() -> bool:
            return "after hook broke" in caplog.text

        await eventually(logged_after_error, what="the after hook's error logged")
    assert (view.state, view.result, view.attempts_made) == ("completed", "still done", 1)
    assert events[-2:] == ["b.after still done (completed)", "a.after still done (completed)"]
    assert "records database unreachable" in caplog.text
    assert "progress store unreachable" in caplog.text


async def test_a_run_wrapper_can_fail_a_job_so_that_it_is_retried(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    class FirstAttemptRefused(Middleware):
        async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
            if ctx.attempt == 1:
                raise RuntimeError("not yet")
            return await call_next()

    async def handler(ctx: JobContext) -> int:
        return ctx.attempt

    await start_worker({"work": handler}, [FirstAttemptRefused()])
    view = await finished(mw_queue, await mw_queue.add("work", {}, attempts=2))
    assert (view.state, view.result) == ("completed", 2)


async def test_startup_and_shutdown_hooks_run_with_the_worker(
    mw_queue: JobQueue, start_worker: StartWorker
) -> None:
    seen: list[str] = []

    class Lifecycle(Middleware):
        async def startup(self, worker: Any) -> None:
            seen.append(f"startup {worker.queue}")

        async def shutdown(self) -> None:
            seen.append("shutdown")

    worker = await start_worker({}, [Lifecycle()])
    assert seen == ["startup mw"]
    await worker.stop(grace_s=0)
    assert seen == ["startup mw", "shutdown"]
