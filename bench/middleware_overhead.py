"""What worker middleware costs: no-op jobs/s through one WorkerRuntime with a bare handler and no
middleware, then with the full stack agentqueue runs (records on SQLite, usage metering, job
logs, lifespan, cancellation, time limits). Same Redis, same run. Prints figures; asserts nothing.

    python bench/middleware_overhead.py [--jobs 2000] [--concurrency 50] [--breakdown]

Uses REDIS_URL if set, else starts an embedded Valkey in a temporary directory. Each job of the
full run has a record written beforehand (as the jobs service does at submit), so the stack does
what it does for a real job: marks it active, meters it, logs it, marks it completed; its time
counts until the last record says completed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from agentqueue.engine.connection import connect
from agentqueue.engine.context import JobContext
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.engine.middleware import Middleware
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime, standard_middleware
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.handlers.usage_metering import UsageMetering
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner

OWNER = JobOwner(user_id="bench", org_id=None)


class Finished(Middleware):
    """First in the list, so its after hook runs last: once the record is written."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.done = asyncio.Event()

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        self.left -= 1
        if self.left <= 0:
            self.done.set()


async def noop(ctx: JobContext) -> None:
    return None


async def drained(queue: JobQueue) -> None:
    while True:
        counts = await queue.counts()
        if counts["waiting"] + counts["active"] + counts["delayed"] == 0:
            return
        await asyncio.sleep(0.005)


async def timed_run(url: str, prefix: str, queue: JobQueue, options: WorkerOptions,
                    middleware: list[Middleware], until: Any) -> float:
    worker = WorkerRuntime(queue.name, url, prefix=prefix, options=options,
                           middleware=middleware)
    worker.register("noop", noop)
    started = time.perf_counter()
    await worker.start()
    await until()
    elapsed = time.perf_counter() - started
    await worker.stop(grace_s=5)
    return elapsed


async def bench(url: str, args: argparse.Namespace, tmp: Path) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = connect(url, max_connections=20)
    n = args.jobs
    options = WorkerOptions(concurrency=args.concurrency)
    db_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'records.db'}"
    await upgrade(db_url)
    records = await Records.connect(db_url)
    # Job logs at INFO would print two lines a job; they are formatted but not shown.
    logging.getLogger("agentqueue.jobs").setLevel(logging.INFO)
    logging.getLogger("agentqueue.jobs").propagate = False
    try:
        bare_queue = JobQueue(f"bare-{prefix}", client, prefix=prefix)
        await bare_queue.add_bulk([("noop", {})] * n)
        bare_s = await timed_run(url, prefix, bare_queue, options, [],
                                 lambda: drained(bare_queue))

        partial: list[tuple[str, float]] = []
        if args.breakdown:  # the stack without records, to see where the time goes
            for label, make in (
                ("engine's own (logs, lifespan, cancel, limits)",
                 lambda: standard_middleware(options)),
                ("engine's own + usage metering",
                 lambda: [UsageMetering(client, prefix=prefix), *standard_middleware(options)]),
            ):
                queue = JobQueue(f"part{len(partial)}-{prefix}", client, prefix=prefix)
                await queue.add_bulk([("noop", {})] * n)
                done = Finished(n)
                seconds = await timed_run(url, prefix, queue, options, [done, *make()],
                                          done.done.wait)
                partial.append((label, seconds))

        full_queue = JobQueue(f"full-{prefix}", client, prefix=prefix)
        ids = await full_queue.add_bulk([("noop", {})] * n)
        for job_id in ids:
            await records.create_job(queue=full_queue.name, job_id=job_id, type="noop", data={},
                                     owner=OWNER)
        finished = Finished(n)
        stack: list[Middleware] = [finished, RecordsMiddleware(records),
                                   UsageMetering(client, prefix=prefix),
                                   *standard_middleware(options)]
        full_s = await timed_run(url, prefix, full_queue, options, stack, finished.done.wait)
        completed = (await records.list_jobs(queues=[full_queue.name], statuses=["completed"],
                                             limit=1))[1]
    finally:
        await drain_keys(client, prefix)
        await records.close()
        await client.aclose()

    bare, full = n / bare_s, n / full_s
    print(f"redis: {url}  records: {db_url.split(':')[0]}  jobs: {n}  "
          f"concurrency: {args.concurrency}")
    print(f"no middleware : {bare:8,.0f} jobs/s ({n} jobs in {bare_s:.2f}s)")
    for label, seconds in partial:
        print(f"  {label}: {n / seconds:,.0f} jobs/s ({seconds:.2f}s)")
    print(f"full stack    : {full:8,.0f} jobs/s ({n} jobs in {full_s:.2f}s; "
          f"{completed} records completed)")
    print(f"ratio         : {full / bare:.2f} (full stack / no middleware)")


async def drain_keys(client: redis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"agentqueue:{prefix}:*"):
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i:i + 1000])


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", default=None,
                        help="records database (default: SQLite in a temporary directory)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the stack without records (engine's own, + metering)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("REDIS_URL")
        if url:
            await bench(url, args, Path(tmp))
            return
        server = EmbeddedValkey(Path(tmp) / "valkey")
        try:
            await bench(await server.start(), args, Path(tmp))
        finally:
            await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
