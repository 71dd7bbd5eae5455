"""Worker processing figures, side by side in one run on one Redis: Node BullMQ 6.7, the bullmq
package's own Python `Worker`, and agentqueue's `WorkerRuntime` (standard middleware). Prints
figures and the ratio ours/Node; asserts nothing.

    python bench/processing.py [--jobs 20000] [--concurrency 50] [--latency-samples 300]
                               [--sleep-jobs 1000] [--rounds 3] [--only node,raw,ours]
                               [--loop uvloop|asyncio] [--profile]

Each contender is one worker process of its own (started after the jobs are queued, so it only
takes them), on a queue of its own:
- rate: `--jobs` no-op jobs at `--concurrency`; jobs/s from the worker's start to the last job
  stored as completed; `--rounds` runs, contenders interleaved, the best of each shown (the
  machine is shared: the best run is the one least disturbed);
- latency: an idle worker; time from just before the producer's `add` to the handler starting
  (p50/p99 over `--latency-samples` jobs sent one at a time);
- sleep: `--sleep-jobs` jobs that each wait 1 s, at concurrency `--sleep-jobs`; wall time from
  the worker's start to the last one completed.

Uses REDIS_URL if set, else starts an embedded Valkey in a temporary directory. Node BullMQ comes
from the npm registry (tests/e2e/node's package.json, installed there on first use, as the interop
tests do). Python contenders run on uvloop when it is installed (`--loop asyncio` to compare).
`--profile` writes a cProfile of our worker's rate run to bench/processing-ours.prof and prints
where its time went.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "e2e" / "node"
NODE_WORKER = Path(__file__).with_name("node_worker.cjs")
PROFILE = Path(__file__).with_name("processing-ours.prof")
CONTENDERS = ("node", "raw", "ours")
LABELS = {"node": "Node BullMQ 6.7", "raw": "Python bullmq Worker", "ours": "agentqueue worker"}
JOB_OPTIONS = {"removeOnComplete": 100, "removeOnFail": 100}
BULK = 1000
ADD_MS: list[float] = []  # how long the producer's `add` call itself took, per pickup sample


# -- the worker processes ---------------------------------------------------------------------

def run_loop(main: Awaitable[None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]
    else:
        asyncio.run(main)  # type: ignore[arg-type]


async def python_worker(kind: str, mode: str, queue: str, prefix: str, count: int,
                        concurrency: int, profile: bool) -> None:
    """One Python contender: prints "ready", then "picked <ms>" per job or "done <n> <s>"."""
    url = os.environ["REDIS_URL"]
    done = asyncio.Event()
    completed = 0
    started = 0.0

    def one_completed() -> None:
        nonlocal completed
        completed += 1
        if mode != "latency" and completed == count:
            done.set()

    async def work(data: Any) -> None:
        if mode == "latency":
            print(f"picked {time.time() * 1000 - data['t']}", flush=True)
        elif mode == "sleep":
            await asyncio.sleep(1)

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    if kind == "raw":
        from bullmq import Worker

        from agentqueue.engine.connection import connect, pool_size_for

        async def raw_processor(job: Any, token: str) -> None:
            await work(job.data)

        client = connect(url, max_connections=pool_size_for(concurrency))
        started = time.perf_counter()
        worker = Worker(queue, raw_processor, {"connection": client, "prefix": prefix,
                                               "concurrency": concurrency})
        worker.on("completed", lambda *args: one_completed())
        print("ready", flush=True)
        await done.wait()
        elapsed = time.perf_counter() - started
        await worker.close()
    else:
        from agentqueue.engine.context import JobContext
        from agentqueue.engine.middleware import Middleware
        from agentqueue.engine.worker import WorkerOptions, WorkerRuntime, standard_middleware

        class CountCompleted(Middleware):
            async def after_job(self, ctx: JobContext, result: Any) -> None:
                one_completed()  # runs once Redis has stored the outcome

        async def handler(ctx: JobContext) -> None:
            await work(ctx.data)

        options = WorkerOptions(concurrency=concurrency)
        runtime = WorkerRuntime(queue, url, prefix=prefix, options=options,
                                middleware=[*standard_middleware(options), CountCompleted()])
        runtime.register("noop", handler)
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        await runtime.start()
        print("ready", flush=True)
        await done.wait()
        elapsed = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(PROFILE))
        await runtime.stop(grace_s=5)
    print(f"done {completed} {elapsed}", flush=True)


# -- the producer and the run ------------------------------------------------------------------

class Contender:
    def __init__(self, kind: str, args: argparse.Namespace, url: str) -> None:
        self.kind = kind
        self.args = args
        self.url = url

    def command(self, mode: str, queue: str, prefix: str, count: int,
                concurrency: int) -> list[str]:
        if self.kind == "node":
            return ["node", str(NODE_WORKER), mode, queue, prefix, str(count), str(concurrency)]
        command = [sys.executable, __file__, "--as-worker", self.kind, "--mode", mode,
                   "--queue", queue, "--prefix", prefix, "--count", str(count),
                   "--concurrency", str(concurrency), "--loop", self.args.loop]
        if self.args.profile and self.kind == "ours" and mode == "rate":
            command.append("--profile")
        return command

    async def start(self, mode: str, queue: str, prefix: str, count: int,
                    concurrency: int) -> asyncio.subprocess.Process:
        env = {**os.environ, "REDIS_URL": self.url, "NODE_PATH": str(NODE_DIR / "node_modules")}
        process = await asyncio.create_subprocess_exec(
            *self.command(mode, queue, prefix, count, concurrency), env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE)
        await expect(process, "ready")
        return process


async def expect(process: asyncio.subprocess.Process, word: str) -> list[str]:
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        fields = line.split()
        if fields and fields[0] == word:
            return fields[1:]
    raise RuntimeError(f"worker exited before saying {word!r}")


async def fill(queue: Any, count: int) -> None:
    for offset in range(0, count, BULK):
        await queue.addBulk([{"name": "noop", "data": {}, "opts": JOB_OPTIONS}
                             for _ in range(min(BULK, count - offset))])


async def timed_run(contender: Contender, mode: str, count: int, concurrency: int,
                    new_queue: Callable[[], Awaitable[tuple[Any, str, str]]]) -> float:
    queue, name, prefix = await new_queue()
    await fill(queue, count)
    process = await contender.start(mode, name, prefix, count, concurrency)
    jobs, seconds = await expect(process, "done")
    await process.wait()
    await queue.close()
    return float(seconds)


async def latency_run(contender: Contender, samples: int,
                      new_queue: Callable[[], Awaitable[tuple[Any, str, str]]]) -> list[float]:
    queue, name, prefix = await new_queue()
    process = await contender.start("latency", name, prefix, samples, 1)
    latencies: list[float] = []
    await asyncio.sleep(0.5)  # let the worker settle into its idle wait
    for i in range(samples + 10):
        sent = time.perf_counter()
        await queue.add("noop", {"t": time.time() * 1000}, JOB_OPTIONS)
        added = time.perf_counter()
        (ms,) = await expect(process, "picked")
        if i >= 10:  # the first few warm the worker up
            latencies.append(float(ms))
            ADD_MS.append((added - sent) * 1000)
        await asyncio.sleep(0.01)  # idle again before the next one
    process.terminate()
    await process.wait()
    await queue.close()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def bench(url: str, args: argparse.Namespace) -> None:
    from bullmq import Queue

    from agentqueue.engine.connection import connect

    client = connect(url, max_connections=20)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"

    async def new_queue() -> tuple[Any, str, str]:
        name = f"q{uuid.uuid4().hex[:8]}"
        return Queue(name, {"connection": client, "prefix": prefix}), name, prefix

    kinds = [k for k in CONTENDERS if k in args.only.split(",")]
    if "node" in kinds:
        install_node()
    contenders = {kind: Contender(kind, args, url) for kind in kinds}
    rates: dict[str, float] = {}  # the best of the rounds
    all_rates: dict[str, list[float]] = {}
    latency: dict[str, list[float]] = {}
    sleeps: dict[str, float] = {}
    try:
        for _ in range(args.rounds):  # interleaved, so a busy moment hits every contender
            for kind, contender in contenders.items():
                rate = args.jobs / await timed_run(contender, "rate", args.jobs,
                                                   args.concurrency, new_queue)
                all_rates.setdefault(kind, []).append(rate)
                rates[kind] = max(rates.get(kind, 0.0), rate)
        for kind, contender in contenders.items():
            latency[kind] = await latency_run(contender, args.latency_samples, new_queue)
        for kind, contender in contenders.items():
            sleeps[kind] = await timed_run(contender, "sleep", args.sleep_jobs,
                                           args.sleep_jobs, new_queue)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()

    print(f"redis: {url}   python loop: {args.loop}")
    print(f"{'':24}{'no-op jobs/s':>14}{'pickup p50 ms':>15}{'p99 ms':>9}"
          f"{f'{args.sleep_jobs} x 1 s wait':>18}")
    for kind in kinds:
        print(f"{LABELS[kind]:24}{rates[kind]:14,.0f}{statistics.median(latency[kind]):15.2f}"
              f"{percentile(latency[kind], 0.99):9.2f}{sleeps[kind]:17.2f}s")
    print(f"({args.jobs} no-op jobs at concurrency {args.concurrency}; "
          f"{args.latency_samples} pickups on an idle worker, of which the producer's add call "
          f"itself took p50 {statistics.median(ADD_MS):.2f} ms)")
    if args.rounds > 1:
        for kind in kinds:
            print(f"  {LABELS[kind]} no-op rounds: "
                  + ", ".join(f"{rate:,.0f}" for rate in all_rates[kind]) + " (best shown)")
    if "node" in rates and "ours" in rates:
        print(f"ours / Node, no-op rate: {rates['ours'] / rates['node']:.2f}x")
    if args.profile and PROFILE.exists():
        import pstats

        print(f"\nour worker's rate run, by own time ({PROFILE.name}):")
        pstats.Stats(str(PROFILE)).sort_stats("tottime").print_stats(25)


def install_node() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("Node BullMQ needs node and npm (or pass --only raw,ours)")
    if not (NODE_DIR / "node_modules" / "bullmq").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=NODE_DIR, check=True, timeout=600, capture_output=True)


async def drop_prefix(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i:i + 1000])


async def main(args: argparse.Namespace) -> None:
    url = os.environ.get("REDIS_URL")
    if url:
        await bench(url, args)
        return
    from agentqueue.engine.embedded import EmbeddedValkey

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedValkey(Path(tmp), appendfsync="everysec")
        try:
            await bench(await server.start(), args)
        finally:
            await server.stop()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--sleep-jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="no-op rate rounds (best shown)")
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default=default_loop())
    parser.add_argument("--profile", action="store_true")
    # A worker process of the run (internal).
    parser.add_argument("--as-worker", choices=("raw", "ours"))
    parser.add_argument("--mode", choices=("rate", "latency", "sleep"))
    parser.add_argument("--queue")
    parser.add_argument("--prefix")
    parser.add_argument("--count", type=int)
    return parser.parse_args()


def default_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


if __name__ == "__main__":
    options = parse()
    if options.as_worker:
        run_loop(python_worker(options.as_worker, options.mode, options.queue, options.prefix,
                               options.count, options.concurrency, options.profile),
                 options.loop)
    else:
        run_loop(main(options), "asyncio")
