"""Throughput of agentqueue's worker on no-op jobs, in one process. Prints figures; asserts nothing.

    python bench/throughput.py [--jobs 5000] [--concurrency 100] [--latency-samples 200]

Uses REDIS_URL if set, else starts an embedded Valkey in a temporary directory. Measures:
- enqueue rate, one `add` at a time and in bulk (`addBulk`, 500 per call);
- processing rate: N queued no-op jobs drained by one worker;
- pickup latency: an idle worker, time from just before `add` to the handler starting.
Add --baseline to drain the same jobs with the bullmq package's own Worker for comparison, and
--profile to write a cProfile of the processing phase to bench/throughput.prof.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bullmq import Worker

from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import JobContext, WorkerOptions, WorkerRuntime

BULK_CHUNK = 500


async def drained(queue: JobQueue) -> None:
    while True:
        counts = await queue.counts()
        if counts["waiting"] + counts["active"] + counts["delayed"] == 0:
            return
        await asyncio.sleep(0.005)


async def bench(url: str, args: argparse.Namespace) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = connect(url, max_connections=20)
    queue = JobQueue("bench", client, prefix=prefix)
    n = args.jobs

    started = time.perf_counter()
    for _ in range(n):
        await queue.add("noop", {})
    one_by_one = n / (time.perf_counter() - started)
    await drain_keys(client, prefix)

    started = time.perf_counter()
    for offset in range(0, n, BULK_CHUNK):
        await queue.add_bulk([("noop", {})] * min(BULK_CHUNK, n - offset))
    bulk = n / (time.perf_counter() - started)

    raw_rate = 0.0
    if args.baseline:
        # The bulk-added jobs drained by the bullmq package's own Worker, for comparison.
        raw_handled = 0

        async def raw_noop(job: object, token: str) -> None:
            nonlocal raw_handled
            raw_handled += 1

        raw_client = connect(url, max_connections=args.concurrency + 10)
        started = time.perf_counter()
        raw = Worker("bench", raw_noop,
                     {"connection": raw_client, "prefix": prefix, "concurrency": args.concurrency})
        await drained(queue)
        raw_rate = raw_handled / (time.perf_counter() - started)
        await raw.close()
        await queue.add_bulk([("noop", {})] * n)

    # Processing: the n bulk-added jobs, drained by one worker.
    handled = 0

    async def noop(ctx: JobContext) -> None:
        nonlocal handled
        handled += 1

    worker = WorkerRuntime("bench", url, prefix=prefix,
                           options=WorkerOptions(concurrency=args.concurrency))
    worker.register("noop", noop)
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    await worker.start()
    await drained(queue)
    elapsed = time.perf_counter() - started
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(Path(__file__).with_name("throughput.prof")))
    processing = handled / elapsed

    # Pickup latency on an idle worker.
    latencies: list[float] = []
    picked = asyncio.Event()
    picked_at = 0.0

    async def stamp(ctx: JobContext) -> None:
        nonlocal picked_at
        picked_at = time.perf_counter()
        picked.set()

    worker.register("stamp", stamp)
    for _ in range(args.latency_samples):
        picked.clear()
        sent = time.perf_counter()
        await queue.add("stamp", {})
        await asyncio.wait_for(picked.wait(), 30)
        latencies.append((picked_at - sent) * 1000)
        await drained(queue)
    await worker.stop(grace_s=5)
    await drain_keys(client, prefix)
    await queue.close()

    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"redis: {url}  jobs: {n}  concurrency: {args.concurrency}")
    print(f"enqueue, one by one : {one_by_one:10,.0f} jobs/s")
    print(f"enqueue, bulk       : {bulk:10,.0f} jobs/s")
    print(f"processing          : {processing:10,.0f} jobs/s ({handled} jobs in {elapsed:.2f}s)")
    if args.baseline:
        print(f"processing, bullmq's own Worker: {raw_rate:,.0f} jobs/s (baseline)")
    print(f"pickup latency      : p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms "
          f"({len(latencies)} samples)")


async def drain_keys(client, prefix: str) -> None:  # type: ignore[no-untyped-def]
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i:i + 1000])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--baseline", action="store_true",
                        help="also drain N jobs with the bullmq package's Worker, for comparison")
    parser.add_argument("--fsync", default="everysec",
                        help="embedded server appendfsync policy (ignored with REDIS_URL)")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if url:
        await bench(url, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedValkey(Path(tmp), appendfsync=args.fsync)
        await bench(await server.start(), args)
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
