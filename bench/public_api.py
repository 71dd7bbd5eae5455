"""Rates through the public Python API, each next to the raw bullmq package on the same Redis.

    python bench/public_api.py [--jobs 2000] [--concurrency 50]

Uses REDIS_URL if set, else starts an embedded Valkey in a temporary directory. Records go to
SQLite in a temporary directory and, if DATABASE_URL points at PostgreSQL, to it as well (in a
queue of their own, deleted afterwards). Measured, one run each, in this order:
- enqueue: `App.enqueue` of a no-op job type (record written, then the job queued with its
  type's options), one call at a time and then `--concurrency` calls in flight, next to the
  bullmq package's `Queue.add` called the same ways;
- processing: those jobs run by a worker built as `agentqueue worker module:app` builds it (its
  records kept in step by the worker; `--concurrency` jobs at a time), timed from its start
  until Redis has run every job and the worker has stopped (which waits for its record writes),
  next to the bullmq package's `Worker` with a no-op processor and the same concurrency
  draining the jobs `Queue.add` queued, timed the same way. A record write that failed is
  counted and shown: the record stays behind until the repair duty mends it;
- processing without records: the same worker built with no records database (jobs added with
  `Queue.add`), next to the first bullmq `Worker` figure: what the records cost.
Prints a table of jobs/s and the ratio of agentqueue's rate to the peer's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bullmq import Queue, Worker
from pydantic import BaseModel
from sqlalchemy import delete

import agentqueue
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.records.models import JobRecord
from agentqueue.services import build_workers, open_records
from agentqueue.serving import serve

POLL_S = 0.005


class NoInput(BaseModel):
    pass


@dataclass
class Rates:
    enqueue: float  # one call at a time
    enqueue_parallel: float  # `concurrency` calls in flight
    processing: float
    unrecorded: int = 0  # jobs run whose record was never marked completed


@dataclass
class Row:
    what: str
    ours: float
    peer: float
    peer_name: str
    note: str = ""


async def timed(n: int, in_flight: int, call: Callable[[], Awaitable[object]]) -> float:
    """Rate of `n` calls, `in_flight` of them at a time."""
    left = n

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return n / (time.perf_counter() - started)


async def finished(queue: Queue, handled: int, total: int) -> bool:
    """Every job handled, and none left waiting or running in Redis."""
    if handled < total:
        return False
    counts = await queue.getJobCounts("active", "waiting", "prioritized", "delayed")
    return sum(int(c) for c in counts.values()) == 0


async def until(probe: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError("the jobs did not finish in time")
        await asyncio.sleep(POLL_S)


async def peer_rates(url: str, prefix: str, n: int, concurrency: int) -> Rates:
    """The bullmq package alone: Queue.add, then a Worker draining the jobs."""
    name = f"peer-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, {"connection": connect(url), "prefix": prefix})
    await queue.add("noop", {})  # connected and its scripts loaded before the clock starts
    serial = await timed(n, 1, lambda: queue.add("noop", {}))
    parallel = await timed(n, concurrency, lambda: queue.add("noop", {}))
    total = 2 * n + 1

    handled = 0

    async def noop(job: Any, token: str) -> None:
        nonlocal handled
        handled += 1

    started = time.perf_counter()
    worker = Worker(name, noop, {"connection": connect(url, max_connections=concurrency + 10),
                                 "prefix": prefix, "concurrency": concurrency})
    await until(lambda: finished(queue, handled, total), timeout=max(60.0, total / 20))
    await worker.close()
    processing = total / (time.perf_counter() - started)
    await queue.close()
    return Rates(serial, parallel, processing)


async def our_rates(settings: Settings, n: int, concurrency: int) -> Rates:
    """agentqueue's public API: App.enqueue, then a worker as the CLI builds it."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    app = agentqueue.App(settings)

    handled = 0

    @app.job("bench-noop", queue=name)
    async def noop(ctx: agentqueue.JobContext, data: NoInput) -> None:
        nonlocal handled
        handled += 1

    await app.enqueue("bench-noop", {})  # connections opened, schema checked: not timed
    serial = await timed(n, 1, lambda: app.enqueue("bench-noop", {}))
    parallel = await timed(n, concurrency, lambda: app.enqueue("bench-noop", {}))
    total = 2 * n + 1
    await app.close()

    # As `agentqueue worker module:app` does (for this queue only).
    app.install()
    url = settings.external_redis_url
    assert url is not None
    records = await open_records(settings)
    watch = Queue(name, {"connection": connect(url), "prefix": settings.queue_prefix})
    try:
        workers = build_workers(settings, url, [name], records=records)
        started = time.perf_counter()
        await workers.start()
        await until(lambda: finished(watch, handled, total), timeout=max(60.0, total / 20))
        # Stopping waits for the record writes still under way: then every record is written,
        # or its write failed (the repair duty would mend it later).
        await workers.stop(grace_s=5)
        processing = total / (time.perf_counter() - started)
        unrecorded = total - (await records.counts(queues=[name]))["completed"]
    finally:
        serve(None)  # the built-in types again
        await watch.close()
        async with records.engine.begin() as conn:  # a shared database keeps no bench records
            await conn.execute(delete(JobRecord).where(JobRecord.queue == name))
        await records.close()
    return Rates(serial, parallel, processing, unrecorded)


async def bare_rate(settings: Settings, n: int) -> float:
    """The same worker with no records database, on jobs added with the bullmq package."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    app = agentqueue.App(settings)
    handled = 0

    @app.job("bench-noop", queue=name)
    async def noop(ctx: agentqueue.JobContext, data: NoInput) -> None:
        nonlocal handled
        handled += 1

    url = settings.external_redis_url
    assert url is not None
    queue = Queue(name, {"connection": connect(url), "prefix": settings.queue_prefix})
    for _ in range(n):
        await queue.add("bench-noop", {})
    app.install()
    try:
        workers = build_workers(settings, url, [name], records=None)
        started = time.perf_counter()
        await workers.start()
        await until(lambda: finished(queue, handled, n), timeout=max(60.0, n / 20))
        await workers.stop(grace_s=5)
        return n / (time.perf_counter() - started)
    finally:
        serve(None)
        await queue.close()


def settings_for(url: str, prefix: str, data_dir: Path, database_url: str | None,
                 concurrency: int) -> Settings:
    values: dict[str, Any] = {
        "REDIS_URL": url, "QUEUE_PREFIX": prefix, "AGENTQUEUE_DATA_DIR": data_dir,
        "DATABASE_URL": database_url, "QUEUE_CONCURRENCY": concurrency, "AI_PROVIDER": "builtin",
    }
    return Settings(**values)


async def bench(url: str, data_dir: Path, args: argparse.Namespace) -> list[Row]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    databases: list[tuple[str, str | None]] = [("SQLite", None)]
    pg = os.environ.get("DATABASE_URL", "")
    if pg.startswith("postgresql"):
        databases.append(("PostgreSQL", pg))
    rows: list[Row] = []
    try:
        for label, database_url in databases:
            peer = await peer_rates(url, prefix, args.jobs, args.concurrency)
            settings = settings_for(url, prefix, data_dir, database_url, args.concurrency)
            ours = await our_rates(settings, args.jobs, args.concurrency)
            rows += [
                Row(f"enqueue, one at a time, records on {label}", ours.enqueue, peer.enqueue,
                    "bullmq Queue.add"),
                Row(f"enqueue, {args.concurrency} at a time, records on {label}",
                    ours.enqueue_parallel, peer.enqueue_parallel, "bullmq Queue.add"),
                Row(f"processing, records on {label}", ours.processing, peer.processing,
                    "bullmq Worker",
                    f"({ours.unrecorded} records not marked completed)" if ours.unrecorded
                    else ""),
            ]
            if label == "SQLite":
                bare = await bare_rate(settings, 2 * args.jobs + 1)
                rows.append(Row("processing, worker without records", bare, peer.processing,
                                "bullmq Worker"))
    finally:
        client = connect(url)
        for pattern in (f"{prefix}:*", f"agentqueue:{prefix}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for i in range(0, len(keys), 1000):
                await client.delete(*keys[i:i + 1000])
        await client.aclose()
    return rows


def print_table(rows: list[Row], url: str, args: argparse.Namespace) -> None:
    print(f"redis: {url}  jobs: {args.jobs}  concurrency: {args.concurrency}  "
          "(no-op jobs, one process, one run)")
    width = max(len(row.what) for row in rows)
    print(f"{'measured':<{width}}  {'agentqueue':>12}  {'peer':>12}  {'ratio':>6}  peer")
    for row in rows:
        print(f"{row.what:<{width}}  {row.ours:>8,.0f} j/s  {row.peer:>8,.0f} j/s  "
              f"{row.ours / row.peer:>6.2f}  {row.peer_name} {row.note}".rstrip())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--fsync", default="everysec",
                        help="embedded server appendfsync policy (ignored with REDIS_URL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("REDIS_URL")
        server = None
        if not url:
            server = EmbeddedValkey(Path(tmp) / "valkey", appendfsync=args.fsync)
            url = await server.start()
        try:
            rows = await bench(url, Path(tmp) / "data", args)
        finally:
            if server is not None:
                await server.stop()
    print_table(rows, url, args)


if __name__ == "__main__":
    asyncio.run(main())
