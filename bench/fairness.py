"""Fairness between tenants: tenant A queues many jobs, then tenant B a few; when do B's finish?

    python bench/fairness.py [--a-jobs 2000] [--b-jobs 10] [--work-ms 10] [--concurrency 10]
                             [--cap 5]

Two runs, same Redis, same worker (records on SQLite, the flow-control middleware first):
- without fairness: no tenant cap, jobs run in queue order, so B's wait for A's backlog;
- with fairness: TENANT_MAX_ACTIVE_PER_ORG = `--cap`, so A holds at most `cap` slots and the
  others go to B's jobs, however many of A's are ahead of them.

Each job sleeps `--work-ms` (its "provider call"). Prints B's completion times, seconds from
B's submission (median, max), and how long A's whole backlog took; asserts nothing.
Uses REDIS_URL if set, else starts an embedded Valkey in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agentqueue.config import Settings
from agentqueue.core.limits import LimitStore
from agentqueue.engine.connection import connect
from agentqueue.engine.context import JobContext
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import WorkerOptions, WorkerRuntime
from agentqueue.handlers.flow_control import FlowControl
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import limit_counters

A = JobOwner(user_id="ann", org_id="tenant-a")
B = JobOwner(user_id="bob", org_id="tenant-b")


async def run(url: str, args: argparse.Namespace, records: Records, cap: int) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = connect(url, max_connections=50)
    queue = JobQueue(f"fair-{prefix}", client, prefix=prefix)
    finished: dict[str, float] = {}
    owner_of: dict[str, str] = {}
    all_done = asyncio.Event()
    total = args.a_jobs + args.b_jobs

    async def work(ctx: JobContext) -> None:
        await asyncio.sleep(args.work_ms / 1000)
        finished[ctx.id] = time.perf_counter()
        if len(finished) == total:
            all_done.set()

    async def add(owner: JobOwner, n: int) -> None:
        ids = await queue.add_bulk([("work", {}, {"priority": 1000})] * n)
        for job_id in ids:  # as the submitter does: the record, the owner noted
            await records.create_job(queue=queue.name, job_id=job_id, type="work", data={},
                                     owner=owner, status="queued")
            await limits.note_owner(queue.name, job_id, owner)
            owner_of[job_id] = str(owner.org_id)

    settings = Settings(REDIS_URL=url, QUEUE_PREFIX=prefix,  # type: ignore[call-arg]
                        TENANT_MAX_ACTIVE_PER_ORG=cap)
    limits = LimitStore(client, settings)
    flow = FlowControl(limits, limit_counters(settings, client), records=records)
    worker = WorkerRuntime(queue.name, url, prefix=prefix,
                           options=WorkerOptions(concurrency=args.concurrency),
                           middleware=[flow, RecordsMiddleware(records)])
    worker.register("work", work)
    try:
        await add(A, args.a_jobs)
        started = time.perf_counter()
        await worker.start()
        b_submitted = time.perf_counter()
        await add(B, args.b_jobs)
        await asyncio.wait_for(all_done.wait(), timeout=600)
        await worker.stop(grace_s=5)
        b_times = sorted(finished[j] - b_submitted for j, org in owner_of.items()
                         if org == "tenant-b")
        a_end = max(finished[j] for j, org in owner_of.items() if org == "tenant-a")
        return {"b_median": statistics.median(b_times), "b_max": b_times[-1],
                "a_all": a_end - started}
    finally:
        keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i:i + 1000])
        await client.aclose()


async def bench(url: str, args: argparse.Namespace, tmp: Path) -> None:
    logging.getLogger("agentqueue.jobs").propagate = False
    db_url = f"sqlite+aiosqlite:///{tmp / 'records.db'}"
    await upgrade(db_url)
    records = await Records.connect(db_url)
    try:
        unfair = await run(url, args, records, cap=0)
        fair = await run(url, args, records, cap=args.cap)
    finally:
        await records.close()
    print(f"tenant A: {args.a_jobs} jobs queued first; tenant B: {args.b_jobs} jobs after; "
          f"{args.work_ms} ms each; concurrency {args.concurrency}")
    print(f"{'':28}{'B median s':>12}{'B max s':>10}{'A all s':>10}")
    print(f"{'without fairness (no cap)':28}{unfair['b_median']:12.2f}{unfair['b_max']:10.2f}"
          f"{unfair['a_all']:10.2f}")
    print(f"{f'with fairness (cap {args.cap}/org)':28}{fair['b_median']:12.2f}"
          f"{fair['b_max']:10.2f}{fair['a_all']:10.2f}")
    print(f"ratio (without / with), B max: {unfair['b_max'] / fair['b_max']:.1f}x; "
          f"A all: {unfair['a_all'] / fair['a_all']:.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--a-jobs", type=int, default=2000)
    parser.add_argument("--b-jobs", type=int, default=10)
    parser.add_argument("--work-ms", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--cap", type=int, default=5)
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
