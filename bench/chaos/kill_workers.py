"""Chaos: SIGKILL random workers while jobs flow. Prints figures; asserts nothing; exits 0.

    python bench/chaos/kill_workers.py [--duration 60] [--rate 10] [--kill-every 3]

Starts one `agentqueue api` and three `agentqueue worker` processes (the real CLI) on a Redis
(REDIS_URL, else redis://127.0.0.1:6379/0, else a server of its own) under a key prefix of its
own, and a records database of its own (a throwaway PostgreSQL database, else SQLite). It
submits `webhook` jobs over HTTP at a steady rate; each job POSTs to a local receiver that counts
how many times each job's handler ran. Every --kill-every seconds a random worker is SIGKILLed
and a replacement started. Then it waits for the queue to drain and prints: accepted,
completed, failed, lost (accepted, but neither in Redis nor finished in its record),
run-more-than-once, records disagreeing with Redis, and how submissions were answered (503,
429, other errors, timeouts). Keys, database and processes are removed at the end, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time

import harness

OPTIONS = [
    ("--kill-every", 3.0, "seconds between worker SIGKILLs"),
    ("--workers", 3, "worker processes"),
    ("--concurrency", 5, "jobs each worker runs at once (QUEUE_CONCURRENCY)"),
    ("--redis-url", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
     "Redis to use ($REDIS_URL if set; if it does not answer, a server of the script's own)"),
    ("--seed", 0, "random seed for kill choices (0: a random one)"),
]


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed or None)
    async with harness.ChaosRun.open(args, "kill") as chaos:
        redis_url = args.redis_url
        if not await harness.redis_answers(redis_url):
            server = await chaos.own_redis()
            print(f"{redis_url} does not answer; started {server.binary}")
            redis_url = server.url
        chaos.stack.push_async_callback(harness.delete_prefix, redis_url, chaos.prefix)
        await chaos.open_records(f"Redis {redis_url} (prefix {chaos.prefix})")

        env = chaos.service_env(redis_url, {"QUEUE_CONCURRENCY": str(args.concurrency)})
        base_url, key = await chaos.start_api(env)
        workers: list[harness.Child] = []

        def start_worker() -> None:
            workers.append(chaos.start_worker(f"worker-{len(workers) + 1}", env))

        for _ in range(args.workers):
            start_worker()
        for child in list(workers):
            await child.wait_log(harness.WORKER_READY)

        receiver = chaos.start_receiver()
        print(f"submitting {args.rate:g}/s for {args.duration:g}s, SIGKILLing a worker every "
              f"{args.kill_every:g}s ({args.workers} workers, concurrency {args.concurrency}, "
              f"lock {args.lock_ms} ms, stalled check {args.stalled_ms} ms)", flush=True)

        skipped = 0
        kill_times: list[float] = []

        async def killer() -> None:
            nonlocal skipped
            while True:
                await asyncio.sleep(args.kill_every)
                # Only a worker that is taking jobs: killing one still importing tests nothing.
                ready = [w for w in workers if w.alive and w.logged(harness.WORKER_READY)]
                if not ready:
                    skipped += 1
                    continue
                kill_times.append(time.monotonic())
                await asyncio.to_thread(rng.choice(ready).kill)
                start_worker()

        killing = asyncio.create_task(killer())
        t0 = time.monotonic()
        try:
            submissions = await chaos.submit(base_url, key, receiver)
        finally:
            killing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await killing
        print(f"submitted {len(submissions)} in {time.monotonic() - t0:.1f}s with "
              f"{len(kill_times)} kills ({skipped} skipped: no worker ready yet); draining",
              flush=True)
        await chaos.report(
            f"kill_workers: {args.duration:g}s at {args.rate:g}/s, {args.workers} workers, "
            f"{len(kill_times)} SIGKILLs", submissions, receiver, redis_url,
            kill_times=kill_times, extra={"kills": len(kill_times)},
        )


if __name__ == "__main__":
    sys.exit(harness.run_main(run, harness.parse_args(__doc__, OPTIONS)))
