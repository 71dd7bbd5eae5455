"""Many SSE subscribers on one API process while jobs run: delivery latency and the process's RSS.

    python bench/push_load.py [--subscribers 1000] [--jobs 20] [--rate 4] [--words 10]

Starts `agentqueue api` (the process measured) and `agentqueue worker` (another process) on
one Redis, and the local OpenAI stand-in (tests/support/fake_openai.py) streaming each answer
a word every 10 ms. `--subscribers` clients each hold `GET /api/jobs/events` open (every job,
streamed text included) while `--jobs` `generate-completion` jobs are submitted at `--rate` per
second. The latency of an event is from Redis writing its stream entry (the entry id's
milliseconds, in the event's `id:`) to a subscriber reading it; every subscriber must hear
every job's `job-completed`. The peer is the same run with one subscriber. The subscribers are
raw HTTP/1.0 readers (no SSE library): the client's own parsing would otherwise be most of what
is measured on a two-core machine. Uses REDIS_URL if set, else an embedded Valkey.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, text_completion  # noqa: E402

from agentqueue.engine.embedded import EmbeddedValkey  # noqa: E402

CLI = str(Path(sys.executable).parent / "agentqueue")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def entry_ms(event: str, cursor: str, queue: str) -> int | None:
    """The milliseconds of the stream entry an event came from (deltas: the deltas stream)."""
    wanted = f"{queue}:{'d' if event == 'job-delta' else 'e'}="
    for part in cursor.split(","):
        if part.startswith(wanted):
            return int(part[len(wanted):].split("-")[0])
    return None


class Subscriber:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.completed = 0
        self.status = 0
        self.open = asyncio.Event()

    async def run(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/jobs/events HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                     b"Accept: text/event-stream\r\n\r\n")
        await writer.drain()
        self.status = int((await reader.readline()).split()[1])
        while (await reader.readline()).strip():
            pass  # the rest of the response's head
        self.open.set()
        event = cursor = ""
        try:
            while line := await reader.readline():
                if line.startswith(b"event: "):
                    event = line[7:].strip().decode()
                elif line.startswith(b"id: "):
                    cursor = line[4:].strip().decode()
                elif line.startswith(b"data: ") and event:
                    now = time.time() * 1000
                    # "id": "<queue>:<job id>" is the payload's first key.
                    queue = line.split(b'"id":"', 1)[1].split(b":", 1)[0].decode()
                    at = entry_ms(event, cursor, queue)
                    if at is not None:
                        self.latencies.append(now - at)
                    if event == "job-completed":
                        self.completed += 1
                    event = ""
        finally:
            writer.close()


async def until_healthy(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(600):
            try:
                if (await http.get("/agent/queue/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("agentqueue api did not become healthy")


async def one_run(port: int, api_pid: int, subscribers: int, jobs: int,
                  rate: float) -> dict[str, float]:
    subs = [Subscriber() for _ in range(subscribers)]
    tasks = [asyncio.create_task(s.run(port)) for s in subs]
    await asyncio.wait_for(asyncio.gather(*(s.open.wait() for s in subs)), 120)
    idle_rss = rss_mb(api_pid)
    peak_rss = idle_rss
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        for _ in range(jobs):
            answer = await http.post("/api/jobs", json={
                "type": "generate-completion", "data": {"message": "go"}})
            assert answer.status_code == 201, answer.text
            peak_rss = max(peak_rss, rss_mb(api_pid))
            await asyncio.sleep(1 / rate)
    deadline = time.monotonic() + 300
    while any(s.completed < jobs for s in subs) and time.monotonic() < deadline:
        peak_rss = max(peak_rss, rss_mb(api_pid))
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    heard_all = sum(s.completed >= jobs for s in subs)
    refused = sum(s.status != 200 for s in subs)
    values = [v for s in subs for v in s.latencies]
    return {"subscribers": subscribers, "refused": refused, "heard_all": heard_all,
            "events": len(values),
            "p50": statistics.median(values) if values else 0.0,
            "p99": percentile(values, 0.99) if values else 0.0,
            "max": max(values) if values else 0.0, "idle_rss": idle_rss, "peak_rss": peak_rss}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        valkey = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            valkey = EmbeddedValkey(Path(tmp) / "valkey")
            redis_url = await valkey.start()
        fake = FakeOpenAI(reply=lambda _: text_completion(
            " ".join(f"w{n}" for n in range(args.words))))
        fake.pace = 0.01
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port),
               "QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
               "AGENTQUEUE_DATA_DIR": str(Path(tmp) / "data"), "AI_PROVIDER": "openai",
               "OPENAI_API_KEY": "sk-bench", "OPENAI_MODEL": "fake-model",
               "LOG_LEVEL": "WARNING", "WORKER_PROCESSES": "1", "RATE_LIMIT_PER_MINUTE": "0"}
        rows = []
        with fake.running():
            env["OPENAI_BASE_URL"] = fake.base_url
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            api = await asyncio.create_subprocess_exec(CLI, "api", env=env, **quiet)
            worker = await asyncio.create_subprocess_exec(CLI, "worker", env=env, **quiet)
            try:
                await until_healthy(f"http://127.0.0.1:{port}")
                start_rss = rss_mb(api.pid)
                await one_run(port, api.pid, 1, 2, args.rate)  # warm-up: first calls, pools
                for count in (1, args.subscribers):
                    rows.append(await one_run(port, api.pid, count, args.jobs, args.rate))
            finally:
                for proc in (api, worker):
                    proc.terminate()
                    await asyncio.wait_for(proc.wait(), 60)
        if valkey is not None:
            await valkey.stop()
    print(f"{args.jobs} jobs at {args.rate:g}/s, {args.words} streamed words each; latency from "
          "Redis writing an event to a subscriber reading it")
    print(f"API process RSS before any subscriber: {start_rss:.1f} MB")
    print(f"{'subscribers':>11} {'refused':>7} {'heard all':>9} {'events':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'RSS idle MB':>11} {'RSS peak MB':>11}")
    for row in rows:
        print(f"{row['subscribers']:>11.0f} {row['refused']:>7.0f} {row['heard_all']:>9.0f} "
              f"{row['events']:>9.0f} {row['p50']:>8.1f} {row['p99']:>8.1f} {row['max']:>8.1f} "
              f"{row['idle_rss']:>11.1f} {row['peak_rss']:>11.1f}")
    one, many = rows
    print(f"p99 with {args.subscribers} subscribers / with 1: "
          f"{many['p99'] / max(one['p99'], 0.001):.1f}x; RSS per subscriber: "
          f"{(many['idle_rss'] - start_rss) * 1024 / args.subscribers:.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=4.0, help="jobs submitted per second")
    parser.add_argument("--words", type=int, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
