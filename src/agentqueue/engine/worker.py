"""The worker runtime: take jobs from one queue and run the handler registered for each name.

Built on the bullmq package's `Worker` (same Lua scripts and keys as Node BullMQ), adding what the
Python port lacks: middleware around every job (`engine.middleware`: time limits, cancellation,
lifespan, job logs by default; records and usage metering from the layers above), stall counting,
a quick reconnect after Redis comes back, and graceful shutdown with a grace period.

Only this module knows the bullmq `Worker`: it drives the middleware through `MiddlewareChain`'s
small API, so a loop of our own can replace it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from bullmq import Job, UnrecoverableError, Worker

from agentqueue.engine.cancellation import Cancellation
from agentqueue.engine.connection import connect, pool_size_for
from agentqueue.engine.context import Handler, JobContext, PermanentJobError
from agentqueue.engine.job_log import JobLog
from agentqueue.engine.lifespan import Lifespan
from agentqueue.engine.middleware import Middleware, MiddlewareChain, WorkerInfo
from agentqueue.engine.stalls import StallCounter
from agentqueue.engine.time_limit import TimeLimit

__all__ = ["Handler", "JobContext", "PermanentJobError", "WorkerOptions", "WorkerRuntime",
           "standard_middleware"]

log = logging.getLogger("agentqueue.worker")

# BullMQ's maxStalledCount when no cap of its own is set: the job's attempts are the limit.
_NO_STALL_CAP = 1_000_000


@dataclass
class WorkerOptions:
    concurrency: int = 5
    job_timeout_s: float = 300.0
    lock_duration_ms: int = 30_000
    stalled_interval_ms: int = 30_000
    # Fail a job whose workers stopped more than this many times, attempts left or not;
    # 0: only its attempts limit it (each stall spends one).
    max_stalled_count: int = 0
    # How long to wait before asking Redis again after a connection error.
    reconnect_delay_ms: int = 500
    keep_completed: int = 100
    keep_failed: int = 100
    name: str | None = None


def standard_middleware(options: WorkerOptions) -> list[Middleware]:
    """The engine's own middleware, for one worker: job logs, lifespan, cancellation and time
    limits (the worker's `job_timeout_s` by default)."""
    return [JobLog(), Lifespan(), Cancellation(), TimeLimit(options.job_timeout_s)]


class WorkerRuntime:
    def __init__(
        self,
        queue: str,
        redis_url: str,
        *,
        prefix: str = "bull",
        options: WorkerOptions | None = None,
        middleware: Sequence[Middleware] | None = None,
        context_class: type[JobContext] | None = None,
    ) -> None:
        """`middleware`: the ordered list run around each job (see `engine.middleware`);
        None gives `standard_middleware(options)`, `[]` none at all."""
        self.queue = queue
        # The context handlers get: a subclass adds what the layers above offer (owner, AI).
        self.context_class = context_class or JobContext
        self.redis_url = redis_url
        self.prefix = prefix
        self.options = options or WorkerOptions()
        if middleware is None:
            middleware = standard_middleware(self.options)
        self.middleware = MiddlewareChain(middleware)
        self.handlers: dict[str, Handler] = {}
        self._timeouts: dict[str, float] = {}
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        # The context of each job between its run and its outcome's hooks.
        self._contexts: dict[str, JobContext] = {}
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._worker: Worker | None = None
        self._client: redis.Redis | None = None
        self._stalls: StallCounter | None = None

    def register(self, name: str, handler: Handler, *, timeout_s: float | None = None) -> None:
        """Run `handler` for jobs named `name`; `timeout_s`: the type's own time limit, applied
        by the `TimeLimit` middleware unless the job sets one of its own."""
        self.handlers[name] = handler
        if timeout_s is not None:
            self._timeouts[name] = timeout_s
        else:
            self._timeouts.pop(name, None)

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` after the worker has stopped (close provider clients and the like)."""
        self._shutdown_hooks.append(hook)

    async def start(self) -> None:
        opts = self.options
        await self.middleware.startup(WorkerInfo(
            queue=self.queue, prefix=self.prefix, redis_url=self.redis_url,
            reconnect_delay_s=opts.reconnect_delay_ms / 1000,
        ))
        self._client = connect(self.redis_url, max_connections=pool_size_for(opts.concurrency))
        self._stalls = StallCounter(self._client, prefix=self.prefix, queue=self.queue)
        self._worker = Worker(
            self.queue,
            self._process,
            {
                "connection": self._client,
                "prefix": self.prefix,
                "concurrency": opts.concurrency,
                "lockDuration": opts.lock_duration_ms,
                "stalledInterval": opts.stalled_interval_ms,
                "maxStalledCount": opts.max_stalled_count or _NO_STALL_CAP,
                "runRetryDelay": opts.reconnect_delay_ms,
                "removeOnComplete": {"count": opts.keep_completed},
                "removeOnFail": {"count": opts.keep_failed},
                "name": opts.name or "agentqueue",
            },
        )
        self._worker.on("error", self._on_error)
        self._worker.on("failed", self._on_failed)
        self._worker.on("completed", self._on_completed)
        log.info(
            "Worker on queue %r started (concurrency %d, handlers: %s)",
            self.queue, opts.concurrency, ", ".join(sorted(self.handlers)) or "none",
        )

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking jobs; let active ones finish within `grace_s`, then stop them.

        Jobs stopped this way keep their lock until it expires; the stalled-job check of any
        worker then puts them back in the queue, so they are run again, not lost.
        """
        worker = self._worker
        if worker is None:
            return
        if self._contexts:
            log.info("Waiting up to %.0fs for %d active job(s)", grace_s, len(self._contexts))
        try:
            await asyncio.wait_for(asyncio.shield(worker.close()), grace_s)
        except TimeoutError:
            log.warning("Grace period over; stopping %d active job(s)", len(self._contexts))
            await worker.close(force=True)
        self._worker = None
        if self._hook_tasks:
            await asyncio.gather(*self._hook_tasks, return_exceptions=True)
        self._contexts.clear()
        await self.middleware.shutdown()
        for hook in self._shutdown_hooks:
            try:
                await hook()
            except Exception as exc:  # shutting down: report, carry on
                log.warning("Shutdown hook failed: %s", exc)

    # -- running one job ----------------------------------------------------------------------

    async def _process(self, job: Job, token: str) -> Any:
        handler = self.handlers.get(job.name)
        if handler is None:
            raise PermanentJobError(f"no handler registered for job name {job.name!r}")
        stalls = await self._count_stalls(job)
        ctx = self.context_class(job, self.queue, self.middleware, stalls=stalls,
                                 type_timeout_s=self._timeouts.get(job.name))
        job_id = str(job.id)
        self._contexts[job_id] = ctx
        try:
            return await self.middleware.run(ctx, handler)
        except asyncio.CancelledError:
            # The worker is being force-closed: no outcome is stored, no outcome hook runs.
            self._contexts.pop(job_id, None)
            raise

    async def _count_stalls(self, job: Job) -> int:
        """Spend an attempt for each time the job's worker stopped mid-run; fail the job if
        none is left. Returns the number of such stalls since the job last ran."""
        if not job.stalledCounter:  # never stalled: nothing to count (no Redis round trip)
            return 0
        assert self._stalls is not None
        attempts = int(job.opts.get("attempts") or 1)
        counted = await self._stalls.count(str(job.id), attempts)
        job.attemptsMade = counted.attempts_made  # BullMQ decides on retries from this
        if counted.exhausted:
            raise UnrecoverableError(
                f"job stalled too often: its worker stopped while running it "
                f"{job.stalledCounter} time(s), and all {attempts} attempt(s) are spent"
            )
        if counted.stalls:
            log.warning("Job %s re-run after its worker stopped (attempt %d of %d)",
                        job.id, counted.attempts_made + 1, attempts)
        return counted.stalls

    # -- outcomes (bullmq emits these once Redis has stored them) -----------------------------

    def _context_of(self, job: Job) -> JobContext:
        ctx = self._contexts.pop(str(job.id), None)
        if ctx is None:  # failed before it ran (no handler, stalled too often, …)
            ctx = self.context_class(job, self.queue, self.middleware,
                                     type_timeout_s=self._timeouts.get(job.name))
        return ctx

    def _on_failed(self, job: Job, err: Exception, *args: Any) -> None:
        attempts = int(job.opts.get("attempts") or 1)
        retrying = not isinstance(err, UnrecoverableError) and job.attemptsMade < attempts
        self._in_background(self.middleware.failed(self._context_of(job), err, retrying))

    def _on_completed(self, job: Job, result: Any, *args: Any) -> None:
        self._in_background(self.middleware.completed(self._context_of(job), result))

    def _in_background(self, call: Coroutine[Any, Any, None]) -> None:
        """Run outcome hooks in the background (bullmq's events are synchronous); the chain
        logs their errors itself."""
        task = asyncio.create_task(call)
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    def _on_error(self, err: Exception, *args: Any) -> None:
        # Connection errors are retried by the worker loop; say so once, without a traceback.
        log.warning("Worker error on queue %r: %s", self.queue, err)
        if args and isinstance(args[0], Job):
            # Its outcome could not be stored (lock lost, Redis gone): no outcome hooks; the
            # stalled-job check runs it again.
            self._contexts.pop(str(args[0].id), None)
