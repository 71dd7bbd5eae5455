"""How long a streamed text delta takes from the provider to each kind of push subscriber.

    python bench/push_deltas.py [--jobs 5] [--words 100] [--pace 0.02]

A real `agentqueue serve` (its own process: API + worker) runs `generate-completion` jobs
against the local OpenAI stand-in (tests/support/fake_openai.py), which streams the answer a
word every `--pace` seconds and notes when it sent each piece. Three subscribers follow each job
at once: an SSE client (`GET /api/jobs/:id/events`), a plain WebSocket client (`/jobs`,
`subscribe-job`) and the Python API (`Job.events()`, `delta` events). For every piece the script
prints the delay from the stand-in writing it to each subscriber reading it, p50 / p99 / max;
and beside them, as the peer, the same pieces as they reached a follower before deltas existed:
in the job's coalesced progress (`Job.events()` `text` events, which carry the text so far).
Uses REDIS_URL if set, else an embedded Valkey.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
import websockets  # noqa: E402
from httpx_sse import aconnect_sse  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, split_text, text_completion  # noqa: E402

import agentqueue  # noqa: E402
from agentqueue.config import Settings  # noqa: E402
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


async def until_healthy(base: str, proc: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(600):
            if proc.returncode is not None:
                raise SystemExit("agentqueue serve exited; see its log")
            try:
                if (await http.get("/agent/queue/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("agentqueue serve did not become healthy")


class Followers:
    """The three subscribers of one job, each noting when it read each piece (by offset)."""

    def __init__(self) -> None:
        self.sse: dict[int, float] = {}
        self.ws: dict[int, float] = {}
        self.python: dict[int, float] = {}
        self.progress: list[tuple[float, int]] = []  # (when, length of the text so far)
        self.ready = {"sse": asyncio.Event(), "ws": asyncio.Event()}


async def follow_sse(http: httpx.AsyncClient, job: str, seen: Followers) -> None:
    async with aconnect_sse(http, "GET", f"/api/jobs/{job}/events",
                            timeout=httpx.Timeout(60, read=120)) as source:
        async for message in source.aiter_sse():
            now = time.time()
            seen.ready["sse"].set()
            if message.event == "job-delta":
                seen.sse[json.loads(message.data)["offset"]] = now


async def follow_ws(url: str, job: str, seen: Followers) -> None:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"event": "subscribe-job", "data": job}))
        while True:
            frame = json.loads(await ws.recv())
            now = time.time()
            if frame["event"] == "subscribe-job":
                seen.ready["ws"].set()
            elif frame["event"] == "job-delta" and frame["data"]["id"] == job:
                seen.ws[frame["data"]["offset"]] = now
            elif frame["event"] in ("job-completed", "job-failed") and \
                    frame["data"]["id"] == job:
                return


async def follow_python(handle: agentqueue.Job, seen: Followers) -> None:
    async for event in handle.events(timeout=120):
        now = time.time()
        if event.kind == "delta" and event.offset is not None:
            seen.python[event.offset] = now
        elif event.kind == "text" and event.text is not None:
            seen.progress.append((now, len(event.text)))


async def run(args: argparse.Namespace) -> None:
    answer = " ".join(f"word{n}" for n in range(args.words))
    pieces = split_text(answer)
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    with tempfile.TemporaryDirectory() as tmp:
        valkey = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            valkey = EmbeddedValkey(Path(tmp) / "valkey")
            redis_url = await valkey.start()
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        fake = FakeOpenAI(reply=lambda _: text_completion(answer))
        fake.pace = args.pace
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PORT": str(port),
               "AGENTQUEUE_DATA_DIR": str(Path(tmp) / "data"), "AI_PROVIDER": "openai",
               "OPENAI_API_KEY": "sk-bench", "OPENAI_MODEL": "fake-model",
               "LOG_LEVEL": "WARNING", "WORKER_PROCESSES": "1"}
        delays: dict[str, list[float]] = {"SSE": [], "WebSocket": [], "Job.events delta": [],
                                          "coalesced progress (peer)": []}
        with fake.running():
            env["OPENAI_BASE_URL"] = fake.base_url
            proc = await asyncio.create_subprocess_exec(
                CLI, "serve", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            app = agentqueue.App(Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
                                          AGENTQUEUE_DATA_DIR=str(Path(tmp) / "data")))
            try:
                base = f"http://127.0.0.1:{port}"
                await until_healthy(base, proc)
                async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                    for _ in range(args.jobs):
                        fake.hold()
                        fake.sent_at.clear()
                        created = (await http.post("/api/jobs", json={
                            "type": "generate-completion", "data": {"message": "go"}})).json()
                        job = created["id"]
                        queue, job_id = job.split(":", 1)
                        seen = Followers()
                        handle = app.job_handle(queue, job_id)
                        python = asyncio.create_task(follow_python(handle, seen))
                        backend = await app._backend()
                        for _ in range(2000):  # until the Python follower is reading
                            if backend.deltas(queue).subscriptions:
                                break
                            await asyncio.sleep(0.005)
                        tasks = [asyncio.create_task(follow_sse(http, job, seen)),
                                 asyncio.create_task(follow_ws(
                                     f"ws://127.0.0.1:{port}/jobs", job, seen)), python]
                        await asyncio.wait_for(asyncio.gather(
                            *(e.wait() for e in seen.ready.values())), 60)
                        fake.release()
                        await asyncio.wait_for(asyncio.gather(*tasks), 120)
                        # sent_at[0] is the role chunk (no text); piece i went out at i + 1.
                        sent = fake.sent_at[1:1 + len(pieces)]
                        for name, got in (("SSE", seen.sse), ("WebSocket", seen.ws),
                                          ("Job.events delta", seen.python)):
                            delays[name] += [(got[o] - s) * 1000
                                             for o, s in zip(offsets, sent, strict=True)
                                             if o in got]
                        for end, s in zip([o + len(p) for o, p in zip(
                                offsets, pieces, strict=True)], sent, strict=True):
                            when = next((t for t, n in seen.progress if n >= end), None)
                            if when is not None:
                                delays["coalesced progress (peer)"].append((when - s) * 1000)
            finally:
                await app.close()
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 60)
        if valkey is not None:
            await valkey.stop()
    print(f"{args.jobs} jobs x {len(pieces)} pieces, one every {args.pace * 1000:g} ms "
          "(delay from the provider writing a piece to the subscriber reading it)")
    print(f"{'subscriber':<28} {'pieces':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in delays.items():
        if not values:
            print(f"{name:<28} {0:>7}")
            continue
        print(f"{name:<28} {len(values):>7} {statistics.median(values):>8.1f} "
              f"{percentile(values, 0.99):>8.1f} {max(values):>8.1f}")
    peer, sse = delays["coalesced progress (peer)"], delays["SSE"]
    if peer and sse:
        print(f"p99 coalesced progress / p99 SSE delta: "
              f"{percentile(peer, 0.99) / max(percentile(sse, 0.99), 0.001):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between pieces")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
