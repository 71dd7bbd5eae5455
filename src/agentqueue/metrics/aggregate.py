"""`MetricsRecorder`: one process's counters and histograms, added to Redis in batches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable

import redis.asyncio as redis

from agentqueue.engine.connection import REDIS_FAILURES

log = logging.getLogger("agentqueue.metrics")

# Upper bounds in seconds of the time histograms (waiting in the queue, running): AI jobs take
# from milliseconds (a cached reply) to many minutes (an agent loop).
TIME_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                  120.0, 300.0, 900.0, 3600.0)
# How often a process adds its sums to Redis, and its workers renew their heartbeat.
FLUSH_INTERVAL_S = 1.0
# A worker not heard of for this long is gone.
WORKER_TTL_S = 30.0

Labels = tuple[tuple[str, str], ...]


def metrics_key(prefix: str) -> str:
    return f"agentqueue:{prefix}:metrics"


def workers_key(prefix: str) -> str:
    return f"agentqueue:{prefix}:metrics:workers"


def field_name(name: str, labels: Labels, part: str = "") -> str:
    """The hash field of one series (and, for a histogram, one of its parts)."""
    return json.dumps([name, dict(labels), part], separators=(",", ":"))


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


class MetricsRecorder:
    """Counters and histograms of this process, sent to Redis by a background flush.

    Recording is a dictionary update (no I/O on the job's path); a crash loses at most the
    last second's sums. Also keeps this process's workers' heartbeats."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._sums: dict[str, float] = defaultdict(float)
        self._workers: set[str] = set()  # "queue" entries this process runs workers for
        self._identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._flusher: asyncio.Task[None] | None = None

    def count(self, name: str, labels: dict[str, str], by: float = 1.0) -> None:
        self._sums[field_name(name, _labels(labels))] += by
        self._wake()

    def queued(self, queue: str, job_type: str) -> None:
        self.count("agentqueue_jobs_enqueued_total", {"queue": queue, "type": job_type})

    def observe(self, name: str, labels: dict[str, str], value: float,
                buckets: Iterable[float] = TIME_BUCKETS_S) -> None:
        """One observation of a histogram: the bucket it falls in (`+Inf` past the last),
        the sum and the count."""
        key = _labels(labels)
        bounds = tuple(buckets)
        index = bisect_left(bounds, value)
        bucket = repr(bounds[index]) if index < len(bounds) else "+Inf"
        self._sums[field_name(name, key, f"le={bucket}")] += 1
        self._sums[field_name(name, key, "sum")] += value
        self._sums[field_name(name, key, "count")] += 1
        self._wake()

    def worker_started(self, queue: str) -> None:
        self._workers.add(queue)
        self._wake()

    async def worker_stopped(self, queue: str) -> None:
        self._workers.discard(queue)
        with contextlib.suppress(*REDIS_FAILURES):
            await self.client.zrem(workers_key(self.prefix), f"{queue}|{self._identity}")

    def _wake(self) -> None:
        if self._flusher is None or self._flusher.done():
            with contextlib.suppress(RuntimeError):  # no running loop: flushed by close()
                self._flusher = asyncio.get_running_loop().create_task(
                    self._flush_loop(), name="metrics-flush")

    async def _flush_loop(self) -> None:
        while self._sums or self._workers:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.flush()

    async def flush(self) -> None:
        """Add the sums gathered since the last flush to Redis (kept for the next one if Redis
        is away) and renew the heartbeats."""
        sums, self._sums = self._sums, defaultdict(float)
        now = time.time()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for field, value in sums.items():
                    pipe.hincrbyfloat(metrics_key(self.prefix), field, value)
                for queue in self._workers:
                    pipe.zadd(workers_key(self.prefix), {f"{queue}|{self._identity}": now})
                await pipe.execute()
        except REDIS_FAILURES as exc:
            for field, value in sums.items():
                self._sums[field] += value
            log.debug("Metrics not written this time: %s", exc)

    async def close(self) -> None:
        """Write what is left and take this process's workers off the list."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        gone = [f"{queue}|{self._identity}" for queue in self._workers]
        self._workers.clear()
        await self.flush()
        if gone:
            with contextlib.suppress(*REDIS_FAILURES):
                await self.client.zrem(workers_key(self.prefix), *gone)


async def live_workers(client: redis.Redis, prefix: str) -> dict[str, int]:
    """Worker processes heard from within `WORKER_TTL_S`, by queue (older heartbeats pruned)."""
    key = workers_key(prefix)
    await client.zremrangebyscore(key, 0, time.time() - WORKER_TTL_S)
    alive: dict[str, int] = {}
    for member in await client.zrange(key, 0, -1):
        queue = str(member).partition("|")[0]
        alive[queue] = alive.get(queue, 0) + 1
    return alive
