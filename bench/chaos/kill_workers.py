"""Chaos: SIGKILL random workers while jobs flow. Prints figures; asserts nothing; exits 0.

    python bench/chaos/kill_workers.py [--duration 60] [--rate 10] [--kill-every 3]

Starts one `agentqueue api` and three `agentqueue worker` processes (the real CLI) on a Redis
(REDIS_URL, else redis://127.0.0.1:6379/0, else a server of its own) under a key prefix of its
own, and a records database of its own (a throwaway PostgreSQL database, else SQLite). It
submits `webhook` jobs over HTTP at a steady rate; each job POSTs to a local receiver that counts
how many times each job's handler ran. Every --kill-every seconds a random worker is SIGKILLed
and a replacement started. Then it waits for the queue to drain and prints: accepted,
completed, failed, lost (accepted, but neither in Redis nor finished in its record),
run-more-than-once, and records disagreeing with Redis. Keys, database and processes are
removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of submitting and killing (default 60)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="job submissions per second (default 10)")
    parser.add_argument("--kill-every", type=float, default=3.0,
                        help="seconds between worker SIGKILLs (default 3)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    parser.add_argument("--concurrency", type=int, default=5,
                        help="jobs each worker runs at once (QUEUE_CONCURRENCY, default 5)")
    parser.add_argument("--handler-delay", type=float, default=0.1,
                        help="seconds the receiver takes to answer each delivery, so some kills "
                             "land mid-job (default 0.1)")
    parser.add_argument("--attempts", type=int, default=3, help="maxAttempts per job (default 3)")
    parser.add_argument("--lock-ms", type=int, default=4000,
                        help="QUEUE_LOCK_DURATION_MS (default 4000)")
    parser.add_argument("--stalled-ms", type=int, default=2000,
                        help="QUEUE_STALLED_INTERVAL_MS (default 2000)")
    parser.add_argument("--drain-timeout", type=float, default=90.0,
                        help="seconds to wait for the queue to drain (default 90)")
    parser.add_argument("--request-timeout", type=float, default=15.0,
                        help="seconds a submission may take before it counts as a timeout")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"),
                        help="Redis to use (default $REDIS_URL or redis://127.0.0.1:6379/0; "
                             "if it does not answer, a server of the script's own)")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("AGENTQUEUE_CHAOS_POSTGRES_URL",
                                               harness.DEFAULT_POSTGRES),
                        help="PostgreSQL server in which to create (and drop) a throwaway "
                             "database (default $AGENTQUEUE_CHAOS_POSTGRES_URL or "
                             f"{harness.DEFAULT_POSTGRES})")
    parser.add_argument("--sqlite", action="store_true",
                        help="keep the records in SQLite instead of PostgreSQL")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the run directory with every process's log")
    parser.add_argument("--seed", type=int, default=None, help="random seed for kill choices")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    harness.install_sigterm(asyncio.current_task())  # type: ignore[arg-type]
    rng = random.Random(args.seed)
    run_dir = Path(tempfile.mkdtemp(prefix="aq-chaos-kill-"))
    prefix = f"chaos-{uuid.uuid4().hex[:10]}"
    async with contextlib.AsyncExitStack() as stack:
        if not args.keep_logs:
            stack.callback(shutil.rmtree, run_dir, ignore_errors=True)
        redis_url = args.redis_url
        if not await harness.redis_answers(redis_url):
            server = harness.RedisServer(run_dir / "redis")
            print(f"{redis_url} does not answer; starting {server.binary}")
            await server.start()
            stack.push_async_callback(server.stop)
            redis_url = server.url
        stack.push_async_callback(harness.delete_prefix, redis_url, prefix)

        db = harness.RecordsDatabase(None if args.sqlite else args.postgres_url, run_dir)
        await db.create()
        stack.push_async_callback(db.drop)
        print(f"Redis {redis_url} (prefix {prefix}); records: {db.describe()}")
        print(f"logs in {run_dir}" + ("" if args.keep_logs else " (removed at the end)"))

        env = harness.service_env(
            redis_url=redis_url, database_url=db.url, prefix=prefix, data_dir=run_dir / "data",
            lock_ms=args.lock_ms, stalled_ms=args.stalled_ms,
            extra={"QUEUE_CONCURRENCY": str(args.concurrency)},
        )
        port = harness.free_port()
        api = harness.agentqueue("api", ["api"], {**env, "PORT": str(port)}, run_dir)
        stack.callback(api.stop)
        base_url = f"http://127.0.0.1:{port}"
        await harness.wait_healthy(base_url, api)
        key = await harness.create_api_key(env, run_dir)

        workers: list[harness.Child] = []
        started = 0

        def start_worker() -> harness.Child:
            nonlocal started
            started += 1
            child = harness.agentqueue(f"worker-{started}", ["worker", "--queue", harness.QUEUE],
                                       env, run_dir)
            workers.append(child)
            return child

        def stop_workers() -> None:
            for child in workers:
                child.stop()

        stack.callback(stop_workers)
        for _ in range(args.workers):
            start_worker()
        for child in list(workers):
            await child.wait_log(harness.WORKER_READY)

        receiver = harness.Receiver(args.handler_delay)
        receiver.start()
        stack.callback(receiver.stop)
        print(f"submitting {args.rate:g}/s for {args.duration:g}s, SIGKILLing a worker every "
              f"{args.kill_every:g}s ({args.workers} workers, concurrency {args.concurrency}, "
              f"lock {args.lock_ms} ms, stalled check {args.stalled_ms} ms)", flush=True)

        kills = skipped = 0
        kill_times: list[float] = []

        async def killer() -> None:
            nonlocal kills, skipped
            while True:
                await asyncio.sleep(args.kill_every)
                # Only a worker that is taking jobs: killing one still importing tests nothing.
                ready = [w for w in workers if w.alive and w.logged(harness.WORKER_READY)]
                if not ready:
                    skipped += 1
                    continue
                kill_times.append(time.monotonic())
                await asyncio.to_thread(rng.choice(ready).kill)
                kills += 1
                start_worker()

        killing = asyncio.create_task(killer())
        t0 = time.monotonic()
        try:
            submissions = await harness.submit_steadily(
                base_url, key, receiver.url, rate=args.rate, duration=args.duration,
                attempts=args.attempts, timeout=args.request_timeout,
            )
        finally:
            killing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await killing
        submit_s = time.monotonic() - t0
        print(f"submitted {len(submissions)} in {submit_s:.1f}s with {kills} kills ({skipped} "
              "skipped: no worker ready yet); draining", flush=True)

        accepted = [s for s in submissions if s.outcome == "accepted"]
        engine = db.engine()
        stack.push_async_callback(engine.dispose)
        drain_s = await harness.wait_drained(engine, redis_url, prefix, accepted,
                                             args.drain_timeout)
        figures = await harness.measure(submissions, receiver, engine, redis_url, prefix,
                                        kill_times)
        harness.print_figures(
            f"kill_workers: {args.duration:g}s at {args.rate:g}/s, {args.workers} workers, "
            f"{kills} SIGKILLs, drained in {drain_s:.0f}s", figures,
            {"kills": kills, "ran_after_answered": figures.ran_again_after_answered,
             "ran_again_without_kill": figures.ran_again_without_kill,
             "unanswered_with_record": figures.unanswered_with_record},
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; processes, keys and database cleaned up", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
