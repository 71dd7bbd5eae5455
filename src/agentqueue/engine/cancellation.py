"""Cancellation of active jobs: a cancel request (`JobQueue.cancel`, published on the queue's
cancel channel and kept in its request set) stops the job's handler; the job fails without retry
with `CANCELLED_REASON`, which the records middleware shows as `cancelled`.

One instance per worker: it follows that worker's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from agentqueue.engine.connection import connect, open_pubsub
from agentqueue.engine.context import JobContext, PermanentJobError
from agentqueue.engine.middleware import CallNext, Middleware, WorkerInfo
from agentqueue.engine.queue import CANCELLED_REASON, cancel_channel, cancel_requests_key

log = logging.getLogger("agentqueue.worker")

_MAX_REMEMBERED = 1000
_MEMORY_S = 600.0


@dataclass
class _Running:
    task: asyncio.Task[Any]
    cancel_requested: bool = False


class Cancellation(Middleware):
    def __init__(self) -> None:
        self._worker: WorkerInfo | None = None
        self._client: redis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._running: dict[str, _Running] = {}
        # Requests heard for jobs this worker was not running (yet): job id -> when.
        self._requests: dict[str, float] = {}

    async def startup(self, worker: WorkerInfo) -> None:
        if self._worker is not None and self._worker != worker:
            raise RuntimeError("a Cancellation middleware serves one worker; make one per worker")
        self._worker = worker
        self._client = connect(worker.redis_url, max_connections=4)
        # Requests made while no worker listened, heard before the first job is taken.
        await self._sweep(self._client, worker)
        self._listener = asyncio.create_task(self._listen(worker), name="cancel-listener")

    async def shutdown(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._worker = None

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        # No await between this check and registering the run: a request is either seen here
        # or finds the job running.
        if self._requests.pop(ctx.id, None) is not None:
            await self._forget_request(ctx.id)
            raise PermanentJobError(CANCELLED_REASON)
        task = asyncio.current_task()
        assert task is not None
        running = self._running[ctx.id] = _Running(task)
        try:
            return await call_next()
        except asyncio.CancelledError:
            if not running.cancel_requested:
                raise  # the worker itself is being force-closed
            task.uncancel()
            await self._forget_request(ctx.id)
            raise PermanentJobError(CANCELLED_REASON) from None
        finally:
            self._running.pop(ctx.id, None)

    def cancel(self, job_id: str) -> bool:
        """Cancel an active job if this worker runs it. A request for a job not running here is
        remembered for a while: the job may be on its way to this worker."""
        running = self._running.get(job_id)
        if running is None:
            now = time.monotonic()
            self._requests[job_id] = now
            if len(self._requests) > _MAX_REMEMBERED:
                cutoff = now - _MEMORY_S
                self._requests = {k: t for k, t in self._requests.items() if t > cutoff}
            return False
        if not running.cancel_requested:
            running.cancel_requested = True
            running.task.cancel()
            log.info("Job %s cancelled by request", job_id)
        return True

    async def _forget_request(self, job_id: str) -> None:
        if self._client is not None and self._worker is not None:
            key = cancel_requests_key(self._worker.prefix, self._worker.queue)
            await self._client.srem(key, job_id)

    async def _sweep(self, client: redis.Redis, worker: WorkerInfo) -> None:
        for job_id in await client.smembers(cancel_requests_key(worker.prefix, worker.queue)):
            self.cancel(str(job_id))

    async def _listen(self, worker: WorkerInfo) -> None:
        """Follow the cancel channel, resubscribing after connection loss."""
        channel = cancel_channel(worker.prefix, worker.queue)
        while True:
            listener = connect(worker.redis_url, max_connections=2)
            pubsub = None
            try:
                pubsub = await open_pubsub(listener)
                await pubsub.subscribe(channel)
                # A request published while we were disconnected is still in the set.
                await self._sweep(listener, worker)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.cancel(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except (redis.ConnectionError, OSError) as exc:
                log.warning("Cancel listener lost Redis (%s); reconnecting", exc)
                await asyncio.sleep(worker.reconnect_delay_s)
            finally:
                with contextlib.suppress(Exception):
                    if pubsub is not None:
                        await pubsub.aclose()
                    await listener.aclose()
