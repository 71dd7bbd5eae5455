"""Worker middleware: hooks around every job a worker runs (in the spirit of Dramatiq's).

A worker runs an ordered list of `Middleware`. For each job:

1. `before_job(ctx)` of each middleware, in list order;
2. the handler, wrapped by each middleware's `run(ctx, call_next)`: the first in the list is the
   outermost wrapper, so a time limit or a cancellation listed early covers those after it;
3. once Redis has stored the outcome: `after_job(ctx, result)` or
   `on_failure(ctx, error, will_retry)` of each middleware, in REVERSE list order (the last one
   in is the first one out, as with nested context managers).

`on_progress(ctx, progress)` runs, in list order, after each progress report is stored in Redis.

Outcome hooks run after Redis has the outcome, so a crash in between leaves a middleware's own
store (the SQL record, say) behind, to be repaired, never ahead of the queue. They run for every
job that ends, also one failed before or by a `before_job` hook: a middleware must not count on
its `before_job` having run (`ctx.state` may lack what it put there).

When a hook raises:
- `before_job` raising `PermanentJobError` (or bullmq's `UnrecoverableError`) fails the job at
  once, without retry: the remaining `before_job` hooks and the handler do not run. Raising
  bullmq's `DelayedError` after moving the job back (`job.moveToDelayed`, as a rate limit does)
  stops it the same way, with no outcome at all: the job waits, no attempt spent. Any other
  exception from `before_job` is logged and the job goes on (a record store hiccup must not fail
  a job). To fail a job so that it is retried, raise from `run`.
- an exception from `run` is the job's failure, as if the handler raised it.
- `after_job`, `on_failure` and `on_progress` errors are logged and the next hook still runs:
  they never fail, retry or lose a job whose outcome is already stored.

The chain is driven by a small API any worker loop can call (`MiddlewareChain.run`, `.progress`,
`.completed`, `.failed`, `.startup`, `.shutdown`); it knows nothing of the loop that calls it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bullmq import UnrecoverableError
from bullmq.custom_errors import DelayedError

from agentqueue.engine.context import Handler, JobContext

log = logging.getLogger("agentqueue.worker")

CallNext = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class WorkerInfo:
    """The worker a middleware serves, as `startup` tells it."""

    queue: str
    prefix: str
    redis_url: str
    # How long to wait before asking Redis again after a connection error.
    reconnect_delay_s: float = 0.5


class Middleware:
    """Subclass and override the hooks you need; each is a no-op by default.

    One instance may serve several workers (one per queue) unless its docstring says otherwise.
    """

    async def startup(self, worker: WorkerInfo) -> None:
        """The worker is starting (open connections, start listeners)."""

    async def shutdown(self) -> None:
        """The worker has stopped (close what `startup` opened)."""

    async def before_job(self, ctx: JobContext) -> None:
        """Before the handler runs (in list order)."""

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        """Wrap the handler (and the middleware after this one): return `await call_next()`,
        perhaps under a time limit or inside a try block."""
        return await call_next()

    async def on_progress(self, ctx: JobContext, progress: Any) -> None:
        """The handler reported progress (already stored in Redis)."""

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        """The job completed; Redis has its result (reverse list order)."""

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        """The run failed; Redis has the failure, and `will_retry` says whether the job will
        run again (reverse list order)."""

    async def on_stalled(self, queue: str, job_ids: list[str]) -> None:
        """This worker's stalled-job check put these jobs (whose worker stopped) back in the
        queue. Not tied to a job this worker ran: no context."""


def _overrides(middleware: Middleware, hook: str) -> bool:
    return getattr(type(middleware), hook) is not getattr(Middleware, hook)


class MiddlewareChain:
    """An ordered list of middleware, driven by a worker loop. Hooks a middleware does not
    override cost nothing per job."""

    def __init__(self, middleware: Sequence[Middleware] = ()) -> None:
        self.middleware = tuple(middleware)

        def having(hook: str) -> tuple[Middleware, ...]:
            return tuple(m for m in self.middleware if _overrides(m, hook))

        self._before = having("before_job")
        self._wrappers = having("run")
        self._progress = having("on_progress")
        self._after = having("after_job")[::-1]
        self._failure = having("on_failure")[::-1]

    @property
    def has_outcome_hooks(self) -> bool:
        """Whether `completed`/`failed` would call anything (a loop may skip them if not)."""
        return bool(self._after or self._failure)

    async def startup(self, worker: WorkerInfo) -> None:
        for m in self.middleware:
            await m.startup(worker)

    async def shutdown(self) -> None:
        for m in reversed(self.middleware):
            try:
                await m.shutdown()
            except Exception as exc:  # shutting down: report, carry on
                log.warning("Middleware %s failed to shut down: %s", _name(m), exc)

    async def run(self, ctx: JobContext, handler: Handler) -> Any:
        """The before hooks, then the handler inside every `run` wrapper; its result."""
        for m in self._before:
            try:
                await m.before_job(ctx)
            except (UnrecoverableError, DelayedError):
                raise
            except Exception as exc:
                log.warning("Middleware %s failed before job %s: %s", _name(m), ctx.id, exc)
        call: CallNext = functools.partial(handler, ctx)
        for m in reversed(self._wrappers):
            call = functools.partial(m.run, ctx, call)
        return await call()

    async def progress(self, ctx: JobContext, value: Any) -> None:
        for m in self._progress:
            try:
                await m.on_progress(ctx, value)
            except Exception as exc:
                log.warning("Middleware %s failed on progress of job %s: %s",
                            _name(m), ctx.id, exc)

    async def completed(self, ctx: JobContext, result: Any) -> None:
        """Call once Redis has stored the job's result."""
        for m in self._after:
            try:
                await m.after_job(ctx, result)
            except Exception as exc:  # the job stands; its record is repaired later
                log.warning("Middleware %s failed after job %s: %s", _name(m), ctx.id, exc)

    async def stalled(self, queue: str, job_ids: list[str]) -> None:
        for m in self.middleware:
            if _overrides(m, "on_stalled"):
                try:
                    await m.on_stalled(queue, job_ids)
                except Exception as exc:
                    log.warning("Middleware %s failed on stalled jobs: %s", _name(m), exc)

    async def failed(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        """Call once Redis has stored the failure."""
        for m in self._failure:
            try:
                await m.on_failure(ctx, error, will_retry)
            except Exception as exc:
                log.warning("Middleware %s failed on the failure of job %s: %s",
                            _name(m), ctx.id, exc)


def _name(middleware: Middleware) -> str:
    return type(middleware).__name__
