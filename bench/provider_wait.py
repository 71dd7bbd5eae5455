"""1,000 jobs that each wait on a simulated 1 s provider call, through one worker process.

    python bench/provider_wait.py [--jobs 1000] [--concurrency 1000] [--delay 1.0]
                                  [--http-clients httpx,aiohttp] [--processes 2]
                                  [--loop uvloop|asyncio]

The provider is a local HTTP server speaking the OpenAI chat-completions protocol that answers
every request after `--delay` seconds (run in its own process, so it costs the worker nothing).
Jobs are `generate-completion` jobs on the `ai-tasks` queue, submitted as the API does (a record
each, in a SQLite file of this run) and run by the real worker stack (records, usage metering, the
handler, the official openai SDK). The physical floor is `delay` per wave of `concurrency` jobs;
the script prints the wall time and that floor, and beside it the same jobs run by the engine's
`WorkerRuntime` alone with a handler that only sleeps `delay` (no middleware, no records, no
HTTP): the full stack's time above that is ours, the rest the worker loop's; and the same calls
made straight through one openai SDK client (no queue at all), what the SDK itself costs.

Both the SDK alone and the full stack run once per HTTP client under the SDK (`AI_HTTP_CLIENT`:
httpx, the SDK's own default, and aiohttp, ours), side by side in one run. With `--processes N`
the full stack also runs as `agentqueue worker --processes N` (N processes under the supervisor,
`concurrency / N` jobs each, the queue paused until every process is up), beside the
single-process figure. The bench's own process runs on uvloop when it is installed
(`--loop asyncio` to compare). Uses REDIS_URL if set, else an embedded Valkey.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn

from agentqueue.config import Settings
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.connection import connect
from agentqueue.engine.embedded import EmbeddedValkey
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.engine.worker import JobContext, WorkerRuntime
from agentqueue.records.migrations import upgrade
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import build_workers, worker_options


def slow_openai_app(delay: float) -> Any:
    """Answers chat completions after `delay` seconds, as JSON or as a server-sent stream."""
    message = {"role": "assistant", "content": "done"}
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
    head = {"id": "chatcmpl-bench", "created": 0, "model": "bench"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            event = await receive()
            raw += event.get("body", b"")
            if not event.get("more_body"):
                break
        stream = bool(json.loads(raw or b"{}").get("stream"))
        await asyncio.sleep(delay)
        if stream:
            chunks = [
                {**head, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": message, "finish_reason": "stop"}]},
                {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage},
            ]
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            kind = b"text/event-stream"
        else:
            body = json.dumps({**head, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "finish_reason": "stop", "message": message}]})
            kind = b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": body.encode()})

    return app


def serve_fake(port: int, delay: float) -> None:
    uvicorn.run(slow_openai_app(delay), host="127.0.0.1", port=port, log_level="warning",
                backlog=4096, limit_concurrency=10_000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("fake provider did not start")


async def wait_done(queue: JobQueue, jobs: int) -> dict[str, int]:
    while True:
        counts = await queue.counts()
        if counts["completed"] + counts["failed"] >= jobs:
            return counts
        await asyncio.sleep(0.02)


async def full_stack(url: str, args: argparse.Namespace, fake_port: int, tmp: Path,
                     http_client: str) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        REDIS_URL=url, QUEUE_PREFIX=prefix, QUEUE_CONCURRENCY=args.concurrency,
        OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{fake_port}/v1",
        AI_HTTP_CLIENT=http_client,
    )
    database = f"sqlite+aiosqlite:///{tmp}/records-{prefix}.db"
    await upgrade(database)
    records = await Records.connect(database)
    client = connect(url)
    keep_all = QueueDefaults(keep_completed=args.jobs, keep_failed=args.jobs)
    queue = JobQueue(settings.ai_tasks_queue_name, client, prefix=prefix, defaults=keep_all)
    submitter = JobSubmitter({queue.name: queue}, records)
    owner = JobOwner(user_id="bench", org_id="bench")
    await asyncio.gather(*(
        submitter.submit(queue=queue.name, name="generate-completion",
                         data={"message": f"job {i}"}, owner=owner)
        for i in range(args.jobs)))
    workers = build_workers(settings, url, [settings.ai_tasks_queue_name], records=records)
    # Built (the SDK imported) before the clock starts: a once-per-process cost, not a job's.
    workers.runtime.providers.get("openai")
    started, cpu = time.perf_counter(), time.process_time()
    await workers.start()
    counts = await wait_done(queue, args.jobs)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu  # the worker's CPU: the bench process runs nothing else
    await workers.stop(5)
    recorded = await records.counts(queues=[queue.name])
    print(f"full stack ({http_client}, 1 process):  completed {counts['completed']}  "
          f"failed {counts['failed']}  records completed {recorded['completed']}  "
          f"wall {wall:.2f}s  cpu {cpu:.2f}s ({1000 * cpu / args.jobs:.2f} ms a job)", flush=True)
    await records.close()
    await clean(client, prefix)
    await queue.close()
    await client.aclose()
    return wall


async def engine_only(url: str, args: argparse.Namespace) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = connect(url)
    keep_all = QueueDefaults(keep_completed=args.jobs, keep_failed=args.jobs)
    queue = JobQueue("ai-tasks", client, prefix=prefix, defaults=keep_all)
    await queue.add_bulk([("wait", {"message": f"job {i}"}) for i in range(args.jobs)])
    options = worker_options(Settings(QUEUE_CONCURRENCY=args.concurrency))
    worker = WorkerRuntime(queue.name, url, prefix=prefix, options=options, middleware=[])

    async def wait(ctx: JobContext) -> dict[str, str]:
        await asyncio.sleep(args.delay)
        return {"text": "done"}

    worker.register("wait", wait)
    started = time.perf_counter()
    await worker.start()
    counts = await wait_done(queue, args.jobs)
    wall = time.perf_counter() - started
    await worker.stop(5)
    print(f"engine only: completed {counts['completed']}  failed {counts['failed']}  "
          f"wall {wall:.2f}s", flush=True)
    await clean(client, prefix)
    await queue.close()
    await client.aclose()
    return wall


async def full_stack_processes(url: str, args: argparse.Namespace, fake_port: int, tmp: Path,
                               processes: int) -> float:
    """The full stack as `agentqueue worker --processes N` runs it: the jobs submitted to a
    paused queue, which is resumed (the clock started) once every worker process is up."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(REDIS_URL=url, QUEUE_PREFIX=prefix)
    database = f"sqlite+aiosqlite:///{tmp}/records-{prefix}.db"
    await upgrade(database)
    records = await Records.connect(database)
    client = connect(url)
    keep_all = QueueDefaults(keep_completed=args.jobs, keep_failed=args.jobs)
    queue = JobQueue(settings.ai_tasks_queue_name, client, prefix=prefix, defaults=keep_all)
    await queue.pause()
    submitter = JobSubmitter({queue.name: queue}, records)
    owner = JobOwner(user_id="bench", org_id="bench")
    await asyncio.gather(*(
        submitter.submit(queue=queue.name, name="generate-completion",
                         data={"message": f"job {i}"}, owner=owner)
        for i in range(args.jobs)))
    env = {**os.environ, "REDIS_URL": url, "QUEUE_PREFIX": prefix, "DATABASE_URL": database,
           "QUEUE_CONCURRENCY": str(max(1, args.concurrency // processes)),
           "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "AI_HTTP_CLIENT": "aiohttp", "LOG_LEVEL": "WARNING"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentqueue.cli", "worker", "--queue", queue.name,
        "--processes", str(processes), env=env)
    try:
        await wait_workers(client, f"{prefix}:{queue.name}:w:", processes)
        started = time.perf_counter()
        await queue.resume()
        counts = await wait_done(queue, args.jobs)
        wall = time.perf_counter() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
    recorded = await records.counts(queues=[queue.name])
    print(f"full stack (aiohttp, agentqueue worker --processes {processes}):  completed "
          f"{counts['completed']}  failed {counts['failed']}  records completed "
          f"{recorded['completed']}  wall {wall:.2f}s", flush=True)
    await records.close()
    await clean(client, prefix)
    await queue.close()
    await client.aclose()
    return wall


async def wait_workers(client: Any, name: str, processes: int) -> None:
    """Until `processes` worker processes have their blocking connection open (each worker
    opens it last, to wait on the paused queue)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        clients = await client.client_list()
        if sum(1 for c in clients if name in c.get("name", "") and c.get("cmd") == "bzpopmin"
               ) >= processes:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the worker processes did not start")


async def sdk_only(args: argparse.Namespace, fake_port: int, http_client: str) -> float:
    """The same calls straight through one openai SDK client: no queue, no records."""
    import openai
    from openai import AsyncOpenAI

    sdk = AsyncOpenAI(api_key="sk-bench", base_url=f"http://127.0.0.1:{fake_port}/v1",
                      http_client=openai.DefaultAioHttpClient() if http_client == "aiohttp"
                      else None)
    limit = asyncio.Semaphore(args.concurrency)

    async def call(i: int) -> None:
        async with limit:
            stream = await sdk.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"job {i}"}],
                stream=True, stream_options={"include_usage": True})
            async for _ in stream:
                pass

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(call(i) for i in range(args.jobs)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await sdk.close()
    print(f"sdk only ({http_client}):  {args.jobs} streamed calls  wall {wall:.2f}s  "
          f"cpu {cpu:.2f}s ({1000 * cpu / args.jobs:.2f} ms a call)", flush=True)
    return wall


async def clean(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i:i + 1000])


async def bench(url: str, args: argparse.Namespace, fake_port: int, tmp: Path) -> None:
    print(f"redis: {url}  jobs: {args.jobs}  concurrency: {args.concurrency}  "
          f"provider delay: {args.delay}s  loop: {args.loop}", flush=True)
    clients = [c for c in args.http_clients.split(",") if c]
    engine = await engine_only(url, args)
    sdk = {c: await sdk_only(args, fake_port, c) for c in clients}
    walls = {c: await full_stack(url, args, fake_port, tmp, c) for c in clients}
    multi = (await full_stack_processes(url, args, fake_port, tmp, args.processes)
             if args.processes else None)
    floor = math.ceil(args.jobs / args.concurrency) * args.delay
    print(f"floor {floor:.2f}s; worker loop alone {engine:.2f}s ({engine - floor:+.2f}s)")
    for c in clients:
        print(f"{c:>8}: full stack {walls[c]:.2f}s ({walls[c] - floor:+.2f}s over the floor; "
              f"ours above the worker loop {walls[c] - engine:+.2f}s), the SDK alone "
              f"{sdk[c]:.2f}s ({sdk[c] - floor:+.2f}s)")
    if len(clients) > 1:
        first, last = clients[0], clients[-1]
        print(f"full stack {first} / {last}: {walls[first] / walls[last]:.2f}x; "
              f"SDK alone {first} / {last}: {sdk[first] / sdk[last]:.2f}x")
    if multi is not None:
        best = walls.get("aiohttp", min(walls.values()))
        print(f"{args.processes} worker processes: {multi:.2f}s, 1 process: {best:.2f}s "
              f"({best / multi:.2f}x)")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--http-clients", default="httpx,aiohttp",
                        help="HTTP clients under the SDK to run, comma-separated")
    parser.add_argument("--processes", type=int, default=0,
                        help="also run `agentqueue worker --processes N` (0: skip)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default=default_loop())
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    fake = multiprocessing.Process(target=serve_fake, args=(port, args.delay), daemon=True)
    fake.start()
    try:
        await wait_port(port)
        url = os.environ.get("REDIS_URL")
        with tempfile.TemporaryDirectory() as tmp:
            if url:
                await bench(url, args, port, Path(tmp))
                return
            server = EmbeddedValkey(Path(tmp) / "valkey", appendfsync="everysec")
            await bench(await server.start(), args, port, Path(tmp))
            await server.stop()
    finally:
        fake.terminate()
        fake.join()


def default_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


if __name__ == "__main__":
    arguments = parse()
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
