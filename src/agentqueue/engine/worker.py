"""The worker runtime: take jobs from one queue and run the handler registered for each name.

Built on the bullmq package's `Worker` (same Lua scripts and keys as Node BullMQ), adding what the
Python port lacks: a per-job timeout, cooperative cancellation of an active job, a quick reconnect
after Redis comes back, and graceful shutdown with a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as redis
from bullmq import Job, UnrecoverableError, Worker

from agentqueue.engine.connection import connect, pool_size_for
from agentqueue.engine.queue import CANCELLED_REASON, cancel_channel, cancel_requests_key
from agentqueue.engine.stalls import StallCounter

log = logging.getLogger("agentqueue.worker")

_MAX_REMEMBERED_CANCELS = 1000
_CANCEL_MEMORY_S = 600.0
# BullMQ's maxStalledCount when no cap of its own is set: the job's attempts are the limit.
_NO_STALL_CAP = 1_000_000


class PermanentJobError(UnrecoverableError):
    """A failure that retrying cannot fix (bad input, unknown job name): fail without retry."""


@dataclass
class JobContext:
    """What a handler gets: the job's identity and data, and ways to report on it."""

    job: Job
    queue: str
    listener: JobListener | None = None
    # Times the job's worker stopped mid-run since it last ran: > 0 for a re-run after a crash.
    stalls: int = 0
    # What middleware and the worker's resources attach to this run (its owner, its meter, …),
    # by name; read through the public context's properties.
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.job.id)

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def data(self) -> Any:
        return self.job.data

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, …"""
        return int(self.job.attemptsMade or 0) + 1

    async def progress(
        self,
        value: int | float | dict[str, Any] | None = None,
        total: int | float | None = None,
        message: str | None = None,
        *,
        current: int | float | None = None,
    ) -> None:
        """`progress(40)` (a percentage), or seed 001's `updateJobProgress` form:
        `progress(10, 100, "Processing item 10 of 100")` / `progress(current=10, total=100)`,
        stored as {"current", "total", "message", "percent"}."""
        if current is None and total is not None and isinstance(value, int | float):
            current, value = value, None
        if current is not None or total is not None:
            if current is None or total is None or value is not None:
                raise ValueError("progress takes a percentage, or current and total")
            percent = round(100 * current / total, 2) if total else 0.0
            value = {"current": current, "total": total, "percent": percent}
            if message is not None:
                value["message"] = message
        elif value is None:
            raise ValueError("progress takes a percentage, or current and total")
        elif message is not None:
            value = {"percent": value, "message": message}
        await self.job.updateProgress(value)
        if self.listener is not None:
            await self.listener.on_progress(self, value)

    async def log(self, line: str) -> None:
        await self.job.log(line)


Handler = Callable[[JobContext], Awaitable[Any]]


class JobListener(Protocol):
    """Told about each job's transitions (to keep durable records, say).

    `on_active` is awaited before the handler runs; `on_completed` and `on_failed` run after the
    outcome is stored in Redis, so a listener that fails or is killed leaves Redis correct and
    its own store behind, to be repaired (never the other way round).
    """

    async def on_active(self, ctx: JobContext) -> None: ...

    async def on_progress(self, ctx: JobContext, progress: Any) -> None: ...

    async def on_completed(self, queue: str, job: Job, result: Any) -> None: ...

    async def on_failed(self, queue: str, job: Job, error: str, will_retry: bool) -> None: ...


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


@dataclass
class _Running:
    task: asyncio.Task[Any]
    cancel_requested: bool = False
    started: float = field(default_factory=time.monotonic)


class WorkerRuntime:
    def __init__(
        self,
        queue: str,
        redis_url: str,
        *,
        prefix: str = "bull",
        options: WorkerOptions | None = None,
        listener: JobListener | None = None,
        context_class: type[JobContext] | None = None,
    ) -> None:
        self.queue = queue
        # The context handlers get: a subclass adds what the layers above offer (owner, AI).
        self.context_class = context_class or JobContext
        self.listener = listener
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self.redis_url = redis_url
        self.prefix = prefix
        self.options = options or WorkerOptions()
        self.handlers: dict[str, Handler] = {}
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self._running: dict[str, _Running] = {}
        self._worker: Worker | None = None
        self._client: redis.Redis | None = None
        self._stalls: StallCounter | None = None
        self._listener: asyncio.Task[None] | None = None
        # Cancel requests heard for jobs this worker was not running (yet): job id -> when.
        self._cancel_requests: dict[str, float] = {}

    def register(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` after the worker has stopped (close provider clients and the like)."""
        self._shutdown_hooks.append(hook)

    async def start(self) -> None:
        opts = self.options
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
        self._listener = asyncio.create_task(self._listen_for_cancels(), name="cancel-listener")
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
        if self._running:
            log.info("Waiting up to %.0fs for %d active job(s)", grace_s, len(self._running))
        try:
            await asyncio.wait_for(asyncio.shield(worker.close()), grace_s)
        except TimeoutError:
            log.warning("Grace period over; stopping %d active job(s)", len(self._running))
            await worker.close(force=True)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        self._worker = None
        if self._listener_tasks:
            await asyncio.gather(*self._listener_tasks, return_exceptions=True)
        for hook in self._shutdown_hooks:
            try:
                await hook()
            except Exception as exc:  # shutting down: report, carry on
                log.warning("Shutdown hook failed: %s", exc)

    # -- running one job ----------------------------------------------------------------------

    async def _process(self, job: Job, token: str) -> Any:
        job_id = str(job.id)
        handler = self.handlers.get(job.name)
        if handler is None:
            raise PermanentJobError(f"no handler registered for job name {job.name!r}")
        assert self._client is not None
        requests = cancel_requests_key(self.prefix, self.queue)
        # Cancelled while it was being picked up: the request was heard, the job not yet here.
        if self._cancel_requests.pop(job_id, None) is not None:
            await self._client.srem(requests, job_id)
            raise UnrecoverableError(CANCELLED_REASON)
        stalls = await self._count_stalls(job)

        # The handler runs in the worker's own task for this job (no extra task: it starts
        # before the worker's next fetches are sent); a cancel request cancels that task.
        task = asyncio.current_task()
        assert task is not None
        running = self._running[job_id] = _Running(task)
        ctx = self.context_class(job, self.queue, self.listener, stalls=stalls)
        try:
            if self.listener is not None:
                try:
                    await self.listener.on_active(ctx)
                except Exception as exc:  # a record store hiccup must not fail the job
                    log.warning("Job listener failed on job %s: %s", job_id, exc)
            return await self._run_with_timeout(handler, ctx)
        except asyncio.CancelledError:
            if not running.cancel_requested:
                raise  # the worker itself is being force-closed
            task.uncancel()
            await self._client.srem(requests, job_id)
            raise UnrecoverableError(CANCELLED_REASON) from None
        finally:
            self._running.pop(job_id, None)

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

    async def _run_with_timeout(self, handler: Handler, ctx: JobContext) -> Any:
        timeout = self.options.job_timeout_s
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                return await handler(ctx)
        except TimeoutError as exc:
            if not limit.expired():
                raise  # the handler's own timeout (a shorter limit of its own): its message
            raise TimeoutError(f"job timed out after {timeout:g}s") from exc

    # -- cancellation -------------------------------------------------------------------------

    def cancel_local(self, job_id: str) -> bool:
        """Cancel an active job if this worker runs it; the job fails without retry.

        A request for a job not running here is remembered for a while: the job may be on its
        way to this worker.
        """
        running = self._running.get(job_id)
        if running is None:
            self._remember_cancel_request(job_id)
            return False
        running.cancel_requested = True
        running.task.cancel()
        log.info("Job %s cancelled by request", job_id)
        return True

    def _remember_cancel_request(self, job_id: str) -> None:
        now = time.monotonic()
        self._cancel_requests[job_id] = now
        if len(self._cancel_requests) > _MAX_REMEMBERED_CANCELS:
            cutoff = now - _CANCEL_MEMORY_S
            self._cancel_requests = {
                k: t for k, t in self._cancel_requests.items() if t > cutoff
            }

    async def _listen_for_cancels(self) -> None:
        """Follow the cancel channel, resubscribing after connection loss."""
        channel = cancel_channel(self.prefix, self.queue)
        while True:
            listener = connect(self.redis_url, max_connections=2)
            pubsub = listener.pubsub()
            try:
                await pubsub.subscribe(channel)
                # A request published while we were disconnected is still in the set.
                await self._sweep_cancel_requests(listener)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.cancel_local(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except (redis.ConnectionError, OSError) as exc:
                log.warning("Cancel listener lost Redis (%s); reconnecting", exc)
                await asyncio.sleep(self.options.reconnect_delay_ms / 1000)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await listener.aclose()

    async def _sweep_cancel_requests(self, client: redis.Redis) -> None:
        pending = await client.smembers(cancel_requests_key(self.prefix, self.queue))
        for job_id in pending:
            self.cancel_local(str(job_id))

    def _on_failed(self, job: Job, err: Exception, *args: Any) -> None:
        attempts = int(job.opts.get("attempts") or 1)
        retrying = not isinstance(err, UnrecoverableError) and job.attemptsMade < attempts
        log.warning(
            "Job %s failed (attempt %d of %d)%s: %s",
            job.id, job.attemptsMade, attempts, "; will retry" if retrying else "", err,
        )
        if self.listener is not None:
            self._tell(self.listener.on_failed(self.queue, job, str(err), retrying))

    def _on_completed(self, job: Job, result: Any, *args: Any) -> None:
        if self.listener is not None:
            self._tell(self.listener.on_completed(self.queue, job, result))

    def _tell(self, call: Awaitable[None]) -> None:
        """Run a listener call in the background (bullmq's events are synchronous)."""

        async def guarded() -> None:
            try:
                await call
            except Exception as exc:  # the record is repaired later; the job stands
                log.warning("Job listener failed: %s", exc)

        task = asyncio.create_task(guarded())
        self._listener_tasks.add(task)
        task.add_done_callback(self._listener_tasks.discard)

    def _on_error(self, err: Exception, *args: Any) -> None:
        # Connection errors are retried by the worker loop; say so once, without a traceback.
        log.warning("Worker error on queue %r: %s", self.queue, err)
