"""The worker runtime: take jobs from one queue and run the handler registered for each name.

A worker loop of our own over the bullmq package's Lua scripts (the same scripts and keys as
Node BullMQ, so Node producers, workers and dashboards share the queue). Around every job it
runs the middleware (`engine.middleware`: time limits, cancellation, lifespan, job logs by
default; records and usage metering from the layers above), and it adds what the Python port
lacks: stall counting, a quick reconnect after Redis comes back, graceful shutdown with a grace
period.

How it runs, and why (the bullmq package's `Worker` spent its time elsewhere):
- a job's slot finishes it and takes the next one in the same `moveToFinished` call, as Node's
  worker does: one script call per job while there is work;
- a dispatcher fills free slots with `moveToActive` (several at once after a hit, so a burst
  fills 1,000 slots in a few round trips) and, when the queue is empty, waits on the queue's
  marker (`BZPOPMIN`) on a connection of its own, so an idle worker picks up a job at once;
- the hot scripts go through a `CommandChannel`: the commands of one event-loop turn in one
  socket write, packed in C;
- one `extendLocks` call renews the locks of every active job; the stalled-job check
  (`moveStalledJobsToWait`) runs every `stalled_interval_ms`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from bullmq import Job, UnrecoverableError
from bullmq.custom_errors import DelayedError, WaitingChildrenError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agentqueue.engine.cancellation import Cancellation
from agentqueue.engine.channel import CommandChannel
from agentqueue.engine.connection import connect_to_slot, pool_size_for
from agentqueue.engine.context import Handler, JobContext, PermanentJobError
from agentqueue.engine.job_log import JobLog
from agentqueue.engine.lifespan import Lifespan
from agentqueue.engine.middleware import Middleware, MiddlewareChain, WorkerInfo
from agentqueue.engine.queue_scripts import Fetched, QueueScripts
from agentqueue.engine.schedules import MissedRuns, scheduler
from agentqueue.engine.stalls import StallCounter
from agentqueue.engine.time_limit import TimeLimit

__all__ = ["Handler", "JobContext", "PermanentJobError", "WorkerOptions", "WorkerRuntime",
           "standard_middleware"]

log = logging.getLogger("agentqueue.worker")

# BullMQ's maxStalledCount when no cap of its own is set: the job's attempts are the limit.
_NO_STALL_CAP = 1_000_000
# How long an idle worker blocks on the marker before asking again (BullMQ's drainDelay), and
# the bounds BullMQ keeps a block within.
_DRAIN_DELAY_S = 5.0
_MIN_BLOCK_S = 0.001
_MAX_BLOCK_S = 10.0
_LOST_REDIS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


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
    # BullMQ's worker `metrics: {maxDataPoints}`: per-minute counts of completed and failed
    # jobs, kept for this many minutes (0: none), as Node workers keep them for dashboards.
    metrics_minutes: int = 0


def standard_middleware(options: WorkerOptions) -> list[Middleware]:
    """The engine's own middleware, for one worker: job logs, lifespan, missed schedule runs,
    cancellation and time limits (the worker's `job_timeout_s` by default)."""
    return [JobLog(), Lifespan(), MissedRuns(), Cancellation(), TimeLimit(options.job_timeout_s)]


@dataclass
class _Connections:
    client: redis.Redis  # scripts, progress, logs, the failed path
    blocking: redis.Redis  # the marker wait only
    channel: CommandChannel
    scripts: QueueScripts
    stalls: StallCounter

    async def close(self) -> None:
        await self.channel.close()
        for client in (self.blocking, self.client):
            with contextlib.suppress(Exception):
                await client.aclose()


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
        self._redis: _Connections | None = None
        self._id = uuid.uuid4().hex
        self._tokens = itertools.count(1)
        self._closing = False
        # Whether the last fetch found the queue rate limited (said once per spell).
        self._limited = False
        # Job id -> lock token, for every job this worker holds (their locks are renewed).
        self._active: dict[str, str] = {}
        self._slots: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._duties: list[asyncio.Task[None]] = []
        self._keep_completed: Any = {"count": self.options.keep_completed}
        self._keep_failed: Any = {"count": self.options.keep_failed}

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
        name = opts.name or "agentqueue"
        # Every key of the queue hashes to one slot (a cluster needs a hash-tagged prefix): on
        # a cluster these are clients of the primary holding it, so commands can be pipelined.
        slot_key = f"{self.prefix}:{self.queue}:marker"
        client = await connect_to_slot(self.redis_url, slot_key,
                                       max_connections=pool_size_for(opts.concurrency))
        blocking = await connect_to_slot(self.redis_url, slot_key, max_connections=1)
        # Named so both BullMQs' `getWorkers` list this worker (each connection says so when
        # it opens). Node BullMQ (and Bull Board, Taskforce) matches the queue's name in
        # base64 and names only a worker's blocking connection: one entry per worker, as a Node
        # worker has. The Python package matches the plain name, on the other connections.
        client.connection_pool.connection_kwargs["client_name"] = (
            f"{self.prefix}:{self.queue}:w:{name}")
        node_name = base64.b64encode(self.queue.encode()).decode()
        blocking.connection_pool.connection_kwargs["client_name"] = (
            f"{self.prefix}:{node_name}:w:{name}")
        channel = CommandChannel(client)
        self._redis = _Connections(
            client, blocking, channel,
            QueueScripts(client, channel, queue=self.queue, prefix=self.prefix,
                         lock_duration_ms=opts.lock_duration_ms, worker_name=name,
                         metrics_minutes=opts.metrics_minutes),
            StallCounter(client, prefix=self.prefix, queue=self.queue),
        )
        self._closing = False
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"worker-{self.queue}")
        self._duties = [
            asyncio.create_task(self._renew_locks(), name=f"worker-{self.queue}-locks"),
            asyncio.create_task(self._check_stalled(), name=f"worker-{self.queue}-stalled"),
        ]
        log.info(
            "Worker on queue %r started (concurrency %d, handlers: %s)",
            self.queue, opts.concurrency, ", ".join(sorted(self.handlers)) or "none",
        )

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking jobs; let active ones finish within `grace_s`, then stop them.

        Jobs stopped this way keep their lock until it expires; the stalled-job check of any
        worker then puts them back in the queue, so they are run again, not lost.
        """
        connections = self._redis
        if connections is None:
            return
        self._closing = True
        if self._dispatcher is not None:
            await _cancelled(self._dispatcher)
            self._dispatcher = None
        if self._slots:
            log.info("Waiting up to %.0fs for %d active job(s)", grace_s, len(self._active))
            _, unfinished = await asyncio.wait(set(self._slots), timeout=max(grace_s, 0))
            if unfinished:
                log.warning("Grace period over; stopping %d active job(s)", len(self._active))
                for slot in unfinished:
                    slot.cancel()
                await asyncio.gather(*unfinished, return_exceptions=True)
        for duty in self._duties:
            await _cancelled(duty)
        self._duties = []
        if self._hook_tasks:
            await asyncio.gather(*self._hook_tasks, return_exceptions=True)
        await connections.close()
        self._redis = None
        self._active.clear()
        await self.middleware.shutdown()
        for hook in self._shutdown_hooks:
            try:
                await hook()
            except Exception as exc:  # shutting down: report, carry on
                log.warning("Shutdown hook failed: %s", exc)

    # -- taking jobs ---------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Fill free slots; when the queue has nothing for us, wait on its marker."""
        batch = 1
        while not self._closing:
            try:
                batch = await self._fill(batch)
            except Exception as exc:  # never let the loop die: report, wait, go on
                await self._redis_trouble(exc)
                batch = 1

    async def _fill(self, batch: int) -> int:
        """Take up to `batch` jobs for free slots; the next batch size (doubled after a full
        take, so a burst fills 1,000 slots in ten round trips)."""
        assert self._redis is not None
        concurrency = self.options.concurrency
        free = concurrency - len(self._slots)
        if free <= 0:
            self._slot_freed.clear()
            await self._slot_freed.wait()
            return batch
        want = min(free, batch)
        scripts = self._redis.scripts
        replies: list[Fetched | BaseException]
        if want == 1:  # an idle worker's pickup: no gather on the way
            replies = [await scripts.move_to_active(self._token())]
        else:
            replies = await asyncio.gather(
                *(scripts.move_to_active(self._token()) for _ in range(want)),
                return_exceptions=True)
        taken = 0
        idle: list[Fetched] = []
        failure: BaseException | None = None
        for reply in replies:
            if isinstance(reply, BaseException):
                failure = reply
            elif reply.job is not None:
                taken += 1
                self._start_slot(reply.job)
            else:
                idle.append(reply)
        if failure is not None:
            await self._redis_trouble(failure)
            return 1
        if taken == want:
            return min(batch * 2, concurrency)
        await self._wait_for_work(idle)
        return 1

    def _token(self) -> str:
        return f"{self._id}:{next(self._tokens)}"

    async def _wait_for_work(self, idle: list[Fetched]) -> None:
        """Block on the queue's marker until a job is added (or the next delayed one is due)."""
        assert self._redis is not None
        limited_ms = max((f.limit_until for f in idle), default=0)
        if limited_ms > 0:  # rate limited (BullMQ's global limit): the limiter's ttl, in ms
            if not self._limited:
                log.info("Queue %r is rate limited: next job in %d ms", self.queue, limited_ms)
            self._limited = True
            await asyncio.sleep(limited_ms / 1000)
            return
        self._limited = False
        due = min((f.delay_until for f in idle if f.delay_until > 0), default=0)
        timeout = _DRAIN_DELAY_S
        if due:
            timeout = min(max((due - time.time() * 1000) / 1000, _MIN_BLOCK_S), _MAX_BLOCK_S)
        try:
            await self._redis.blocking.bzpopmin(self._redis.scripts.scripts.keys["marker"],
                                                timeout)
        except _LOST_REDIS as exc:
            await self._redis_trouble(exc)

    async def _redis_trouble(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            raise exc
        # Reported once per attempt, without a traceback: the loop asks again shortly.
        log.warning("Worker error on queue %r: %s", self.queue, exc)
        await asyncio.sleep(self.options.reconnect_delay_ms / 1000)

    # -- running jobs --------------------------------------------------------------------------

    def _start_slot(self, job: Job) -> None:
        slot = asyncio.create_task(self._slot(job))
        self._slots.add(slot)
        slot.add_done_callback(self._slot_done)

    def _slot_done(self, slot: asyncio.Task[None]) -> None:
        self._slots.discard(slot)
        self._slot_freed.set()
        if not slot.cancelled() and slot.exception() is not None:
            log.error("Worker slot on queue %r failed", self.queue, exc_info=slot.exception())

    async def _slot(self, job: Job | None) -> None:
        """Run jobs one after another: each finish fetches the next while there is work."""
        while job is not None:
            job = await self._run(job)

    async def _run(self, job: Job) -> Job | None:
        """Run one job and store its outcome; the next job, if the same call fetched one."""
        token = str(job.token)
        job_id = str(job.id)
        self._active[job_id] = token
        ctx: JobContext | None = None
        try:
            if job.repeatJobKey:
                await self._schedule_next_iteration(job)
            try:
                if job.deferredFailure:  # the stalled-job check failed it (maxStalledCount)
                    raise UnrecoverableError(job.deferredFailure)
                handler = self.handlers.get(job.name)
                if handler is None:
                    raise PermanentJobError(f"no handler registered for job name {job.name!r}")
                stalls = await self._count_stalls(job) if job.stalledCounter else 0
                ctx = self.context_class(job, self.queue, self.middleware, stalls=stalls,
                                         type_timeout_s=self._timeouts.get(job.name))
                result = await self.middleware.run(ctx, handler)
            except (DelayedError, WaitingChildrenError):
                return None  # the handler moved the job itself
            except Exception as err:
                return await self._failed(job, ctx, err, token)
            return await self._completed(job, ctx, result, token)
        finally:
            self._active.pop(job_id, None)

    async def _completed(self, job: Job, ctx: JobContext, result: Any, token: str) -> Job | None:
        assert self._redis is not None
        keep = job.opts.get("removeOnComplete", self._keep_completed)
        try:
            keys, args = self._redis.scripts.completed_args(job, result, keep, token,
                                                            fetch_next=not self._closing)
        except (TypeError, ValueError) as err:  # a result JSON cannot hold fails the job
            return await self._failed(job, ctx, err, token)
        try:
            fetched = await self._redis.scripts.move_to_completed(job, result, keys, args)
        except Exception as exc:
            self._outcome_lost(job, exc)
            return None
        if self.middleware.has_outcome_hooks:
            self._in_background(self.middleware.completed(ctx, result))
        return fetched.job

    async def _failed(self, job: Job, ctx: JobContext | None, err: Exception,
                      token: str) -> Job | None:
        """Store the failure as the package decides (retry now, after a backoff, or fail);
        call within the `except` block that caught `err`, so its traceback is kept."""
        assert self._redis is not None
        job.opts.setdefault("removeOnFail", self._keep_failed)
        try:
            reply = await job.moveToFailed(err, token, fetchNext=not self._closing)
        except Exception as exc:
            self._outcome_lost(job, exc)
            return None
        if ctx is None:  # failed before it ran (no handler, stalled too often, …)
            ctx = self.context_class(job, self.queue, self.middleware,
                                     type_timeout_s=self._timeouts.get(job.name))
        attempts = int(job.opts.get("attempts") or 1)
        retrying = not isinstance(err, UnrecoverableError) and job.attemptsMade < attempts
        if self.middleware.has_outcome_hooks:
            self._in_background(self.middleware.failed(ctx, err, retrying))
        return self._redis.scripts.fetched_from_package(reply, token).job

    def _outcome_lost(self, job: Job, exc: Exception) -> None:
        # Its outcome could not be stored (lock lost, Redis gone): no outcome hooks; the
        # stalled-job check runs it again.
        log.warning("Worker error on queue %r: could not store the outcome of job %s: %s",
                    self.queue, job.id, exc)

    async def _count_stalls(self, job: Job) -> int:
        """Spend an attempt for each time the job's worker stopped mid-run; fail the job if
        none is left. Returns the number of such stalls since the job last ran."""
        assert self._redis is not None
        attempts = int(job.opts.get("attempts") or 1)
        counted = await self._redis.stalls.count(str(job.id), attempts)
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

    async def _schedule_next_iteration(self, job: Job) -> None:
        """A job scheduler's job (Node's `upsertJobScheduler`): queue its next iteration, as
        the package's worker does on taking one (with agentqueue's cron rules: `engine.cron`)."""
        assert self._redis is not None
        try:
            await scheduler(self._redis.scripts).upsertJobScheduler(
                job.repeatJobKey, (job.opts or {}).get("repeat"), job.name, job.data, job.opts,
                override=False, producer_id=job.id)
        except Exception as exc:  # the job itself still runs
            log.warning("Could not schedule the next iteration of job %s: %s", job.id, exc)

    def _in_background(self, call: Coroutine[Any, Any, None]) -> None:
        """Run outcome hooks beside the loop (a slow record store must not hold the next job);
        the chain logs their errors itself."""
        task = asyncio.create_task(call)
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    # -- duties: lock renewal, stalled jobs ---------------------------------------------------

    async def _renew_locks(self) -> None:
        """Renew the lock of every active job, in one call, a few times per lock duration."""
        assert self._redis is not None
        interval = self.options.lock_duration_ms / 3 / 1000
        while True:
            await asyncio.sleep(interval)
            if not self._active:
                continue
            job_ids = list(self._active)
            tokens = [self._active[job_id] for job_id in job_ids]
            try:
                lost = await self._redis.scripts.extend_locks(job_ids, tokens)
            except Exception as exc:
                log.warning("Could not renew the locks of %d job(s) on queue %r: %s",
                            len(job_ids), self.queue, exc)
                continue
            for job_id in lost:
                # Often a job that finished while the renewal was on its way; one that lost
                # its lock for real says so when its outcome cannot be stored.
                log.debug("Lock of job %s not renewed (finished meanwhile, or lost)", job_id)

    async def _check_stalled(self) -> None:
        """Put jobs whose worker stopped (lock expired) back in the queue (BullMQ's check;
        whichever worker's runs first in an interval does it)."""
        assert self._redis is not None
        opts = self.options
        while True:
            try:
                stalled = await self._redis.scripts.scripts.moveStalledJobsToWait(
                    opts.max_stalled_count or _NO_STALL_CAP, opts.stalled_interval_ms)
                for job_id in stalled or []:
                    log.warning("Job %s stalled (its worker stopped); back in the queue", job_id)
                if stalled:
                    await self.middleware.stalled(self.queue, [str(j) for j in stalled])
            except Exception as exc:
                log.warning("Stalled-job check on queue %r failed: %s", self.queue, exc)
            await asyncio.sleep(opts.stalled_interval_ms / 1000)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
