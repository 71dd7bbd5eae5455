"""What adding jobs costs on each Redis deployment, side by side in one run. Prints figures;
asserts nothing.

    python bench/redis_deployments.py [--jobs 2000]

Starts, with the machine's `redis-server` in a temporary directory: a primary with a replica,
and a 3-master Redis Cluster (AOF on, `appendfsync always`, everywhere). Measures, one `add` at
a time:
- on the primary, without and with waiting for the replica (`ReplicaWait(1)`, what
  `REDIS_WAIT_REPLICAS=1` does): adds/s and p50/p99 latency, and the ratio;
- on the cluster: the same adds;
and in bulk (500 per call): the bullmq package's `addBulk` beside agentqueue's `add_bulk`
(one MULTI/EXEC of the same scripts) on the primary, and `add_bulk` on the cluster (where the
package's fails).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis

from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import free_port
from agentqueue.engine.queue import JobQueue, ReplicaWait

BULK = 500


def start(directory: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", *args, "--port", str(port), "--bind", "127.0.0.1", "--dir",
         str(directory), "--save", "", "--daemonize", "no", "--logfile",
         str(directory / f"{port}.log")], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port).ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on {port} did not start")


def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.05)


async def timed_adds(queue: JobQueue, n: int) -> tuple[float, float, float]:
    """adds/s, p50 ms, p99 ms of `n` adds one after another."""
    took = []
    begin = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await queue.add("noop", {"i": i})
        took.append((time.perf_counter() - t) * 1000)
    rate = n / (time.perf_counter() - begin)
    took.sort()
    return rate, statistics.median(took), took[int(len(took) * 0.99) - 1]


async def timed_bulk(add: Callable[[list[tuple[str, dict[str, int]]]], Awaitable[object]],
                     n: int) -> float:
    begin = time.perf_counter()
    for start_at in range(0, n, BULK):
        await add([("noop", {"i": i}) for i in range(start_at, min(n, start_at + BULK))])
    return n / (time.perf_counter() - begin)


def line(label: str, figures: tuple[float, float, float]) -> None:
    print(f"  {label:<42} {figures[0]:8.0f} adds/s   p50 {figures[1]:6.2f} ms   "
          f"p99 {figures[2]:6.2f} ms")


async def main(jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        durable = ["--appendonly", "yes", "--appendfsync", "always"]
        primary, replica = free_port(), free_port()
        nodes = [free_port() for _ in range(3)]
        processes = [start(directory, primary, *durable, "--appenddirname", "p"),
                     start(directory, replica, *durable, "--appenddirname", "r",
                           "--replicaof", "127.0.0.1", str(primary))]
        processes += [start(directory, port, *durable, "--appenddirname", f"c{port}",
                            "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                            "--cluster-config-file", f"n{port}.conf")
                      for port in nodes]
        try:
            until(lambda: redis.Redis(port=replica, decode_responses=True)
                  .info("replication")["master_link_status"] == "up")
            await asyncio.to_thread(
                subprocess.run, ["redis-cli", "--cluster", "create",
                                 *(f"127.0.0.1:{p}" for p in nodes), "--cluster-replicas", "0",
                                 "--cluster-yes"], check=True, capture_output=True)
            until(lambda: all(redis.Redis(port=p, decode_responses=True).cluster("info")
                              ["cluster_state"] == "ok" for p in nodes))
            one = connect(f"redis://127.0.0.1:{primary}/0")
            cluster = connect(f"redis+cluster://127.0.0.1:{nodes[0]}")
            plain = JobQueue("plain", one, prefix="bench")
            waiting = JobQueue("waiting", one, prefix="bench", replica_wait=ReplicaWait(1))
            on_cluster = JobQueue("q", cluster, prefix="{bench}")
            print(f"one add at a time, {jobs} jobs (primary + replica: AOF fsync always)")
            await timed_adds(plain, 200)  # warm up: scripts loaded, connections open
            no_wait = await timed_adds(plain, jobs)
            with_wait = await timed_adds(waiting, jobs)
            await timed_adds(on_cluster, 200)
            clustered = await timed_adds(on_cluster, jobs)
            line("primary, no WAIT", no_wait)
            line("primary, WAIT 1 (REDIS_WAIT_REPLICAS=1)", with_wait)
            line("3-master cluster", clustered)
            print(f"  WAIT 1 / no WAIT rate ratio: {with_wait[0] / no_wait[0]:.2f}")
            print(f"bulk adds, {BULK} per call, {jobs * 5} jobs (primary: median of 3)")
            package, options = plain._queue, plain.defaults.job_options()

            async def package_bulk(batch: list[tuple[str, dict[str, int]]]) -> object:
                return await package.addBulk([{"name": n, "data": d, "opts": options}
                                              for n, d in batch])

            # Alternated, three rounds each, medians: the server's AOF grows as they run.
            ours_runs, theirs_runs = [], []
            for _ in range(3):
                ours_runs.append(await timed_bulk(plain.add_bulk, jobs * 5))
                theirs_runs.append(await timed_bulk(package_bulk, jobs * 5))
            ours, theirs = statistics.median(ours_runs), statistics.median(theirs_runs)
            on_cluster_bulk = await timed_bulk(on_cluster.add_bulk, jobs * 5)
            print(f"  {'primary, bullmq addBulk':<42} {theirs:8.0f} jobs/s")
            print(f"  {'primary, agentqueue add_bulk':<42} {ours:8.0f} jobs/s   "
                  f"(ratio {ours / theirs:.2f})")
            print(f"  {'3-master cluster, add_bulk':<42} {on_cluster_bulk:8.0f} jobs/s")
            for queue in (plain, waiting, on_cluster):
                await queue.close()
            await one.aclose()
            await cluster.aclose()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()


if __name__ == "__main__":
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise SystemExit("needs redis-server and redis-cli")
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    asyncio.run(main(parser.parse_args().jobs))
