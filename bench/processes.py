"""Throughput of `agentqueue worker --processes 2` beside `--processes 1`, on the same Redis.

    python bench/processes.py [--jobs 4000] [--io-jobs 4000] [--io-ms 10] [--concurrency 50]
                              [--rounds 2]

Drives the real CLI, so it measures whatever worker loop is installed: for each mode it starts
`agentqueue worker bench/processes_app.py:app --no-builtin --processes N` as a subprocess
(QUEUE_CONCURRENCY per process), waits until every process has started its worker, queues the
jobs on a paused queue with the bullmq package's `addBulk`, resumes it and times until Redis has
no job left waiting or active. Jobs come from a plain BullMQ producer, so the worker writes each
one's record, as a busy deployment's worker does: in PostgreSQL (a database of its own on
`--postgres`, default the machine's 127.0.0.1:5432, created and dropped), or with `--sqlite` in
a SQLite file, whose single writer (an fsync per write) is then the limit whatever the number of
processes. Two kinds of job: `noop` (returns at once: the worker's own cost) and
`io` (awaits `--io-ms`, a short provider call). Modes alternate within each round and the
best of the rounds is kept, so both modes see the same machine; prints jobs/s and the ratio.

Uses REDIS_URL if set (a key prefix of its own, deleted afterwards), else redis://127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bullmq import Queue

from agentqueue.engine.connection import connect

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "agentqueue")
QUEUE = "bench-processes"
BULK = 500


async def wait_for_log(log: Path, text: str, count: int,
                       proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 120
    while (written := await asyncio.to_thread(log.read_text, errors="replace")).count(text) < count:
        if proc.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{written}")
        await asyncio.sleep(0.05)


async def drained(queue: Queue) -> None:
    while True:
        counts = await queue.getJobCounts("wait", "active", "prioritized", "paused", "delayed")
        if not any(counts.values()):
            return
        await asyncio.sleep(0.005)


async def run_once(args: argparse.Namespace, processes: int, name: str, jobs: int) -> float:
    """Jobs/s of `jobs` jobs named `name` through `--processes processes`."""
    prefix = f"benchproc-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "REDIS_URL": args.redis_url, "QUEUE_PREFIX": prefix,
               "AGENTQUEUE_DATA_DIR": tmp, "QUEUE_CONCURRENCY": str(args.concurrency),
               "BENCH_IO_MS": str(args.io_ms), "LOG_LEVEL": "INFO",
               "MAINTENANCE_ENABLED": "false"}
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        elif args.postgres:
            env["DATABASE_URL"] = await create_database(args.postgres, prefix)
        log = Path(os.environ.get("BENCH_LOG_DIR", tmp)) / f"worker-{processes}-{name}.log"
        client = connect(args.redis_url)
        queue = Queue(QUEUE, {"connection": client, "prefix": prefix})
        await queue.pause()
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                CLI, "worker", f"{HERE / 'processes_app.py'}:app", "--no-builtin",
                "--processes", str(processes),
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                await wait_for_log(log, f"Worker on queue '{QUEUE}' started", processes, proc)
                for start in range(0, jobs, BULK):
                    batch = min(BULK, jobs - start)
                    await queue.addBulk([{"name": name, "data": {}} for _ in range(batch)])
                began = time.perf_counter()
                await queue.resume()
                await drained(queue)
                elapsed = time.perf_counter() - began
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 60)
        await queue.obliterate(force=True)
        await queue.close()
        await client.aclose()
        if not args.database_url and args.postgres:
            await drop_database(args.postgres, prefix)
    return jobs / elapsed


async def create_database(server: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{server}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{server}/{name}"


async def drop_database(server: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{server}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--io-jobs", type=int, default=4000)
    parser.add_argument("--io-ms", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--postgres", default="postgres@127.0.0.1:5432",
                        help="user@host:port of a PostgreSQL server that lets the user create "
                             "databases")
    parser.add_argument("--sqlite", action="store_true", help="records in SQLite instead")
    parser.add_argument("--database-url", default=None, help="records database to use as is")
    args = parser.parse_args()
    if args.sqlite:
        args.postgres = None
    kinds = [("noop", args.jobs), ("io", args.io_jobs)]
    best: dict[tuple[str, int], float] = {}
    for round_ in range(1, args.rounds + 1):
        for name, jobs in kinds:
            for processes in (1, 2):
                rate = await run_once(args, processes, name, jobs)
                key = (name, processes)
                best[key] = max(best.get(key, 0.0), rate)
                print(f"round {round_}: {name:4s} --processes {processes}: {rate:8.0f} jobs/s",
                      flush=True)
    records = args.database_url or ("SQLite" if args.sqlite else f"PostgreSQL {args.postgres}")
    print(f"\nos.cpu_count() = {os.cpu_count()}; concurrency {args.concurrency} per process; "
          f"records in {records}; best of {args.rounds} round(s)")
    print(f"{'job':28s} {'--processes 1':>14s} {'--processes 2':>14s} {'ratio':>7s}")
    for name, jobs in kinds:
        label = f"{name} ({jobs} jobs" + (f", {args.io_ms} ms wait)" if name == "io" else ")")
        one, two = best[(name, 1)], best[(name, 2)]
        print(f"{label:28s} {one:12.0f}/s {two:12.0f}/s {two / one:6.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
