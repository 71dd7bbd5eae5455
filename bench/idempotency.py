"""What an `Idempotency-Key` costs a create: `POST /v1/jobs/sentiment` without a key, with a new
key each time (claim + stored answer: two Redis round trips more), and with one key sent again
(answered from Redis, no job created).

    python bench/idempotency.py [--seconds 5] [--concurrency 16] [--rounds 2]

The API runs in this process (no worker, so jobs only pile up), driven through httpx's ASGI
transport: no sockets, so the figures are the app's own cost. REDIS_URL selects a Redis; unset,
an embedded Valkey is started. The kinds run in turn, `--rounds` times each, so the machine's
noise falls on all of them; prints requests/s per kind and each one's ratio to "no key".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from agentqueue.api.app import create_app
from agentqueue.config import Settings
from agentqueue.engine.embedded import EmbeddedValkey

BODY = {"text": "What a lovely day it is"}
PATH = "/v1/jobs/sentiment"


async def drive(http: httpx.AsyncClient, kind: str, seconds: float, concurrency: int) -> float:
    deadline = time.monotonic() + seconds
    done = 0
    fixed = f"same-{uuid.uuid4().hex}"

    async def one() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            headers = {}
            if kind == "new key":
                headers["Idempotency-Key"] = uuid.uuid4().hex
            elif kind == "same key (replay)":
                headers["Idempotency-Key"] = fixed
            answer = await http.post(PATH, json=BODY, headers=headers)
            assert answer.status_code in (200, 201), answer.text
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    return done / (time.monotonic() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url = os.environ.get("REDIS_URL")
        if url is None:
            server = EmbeddedValkey(Path(tmp) / "valkey")
            url = await server.start()
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, REDIS_URL=url, QUEUE_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
            AGENTQUEUE_DATA_DIR=tmp, MAINTENANCE_ENABLED="false")
        app = create_app(settings, run_worker=False)
        figures: dict[str, list[float]] = {}
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
                async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                             timeout=60) as http:
                    await drive(http, "no key", 1.0, args.concurrency)  # warm up
                    for _ in range(args.rounds):
                        for kind in ("no key", "new key", "same key (replay)"):
                            rate = await drive(http, kind, args.seconds, args.concurrency)
                            figures.setdefault(kind, []).append(rate)
                services = app.state.services
                async for key in services.client.scan_iter(match=f"*{settings.queue_prefix}*"):
                    await services.client.delete(key)
        finally:
            if server is not None:
                await server.stop()
    base = statistics.median(figures["no key"])
    print(f"POST {PATH}, concurrency {args.concurrency}, {args.rounds} x {args.seconds:.0f} s "
          "per kind, in turn (median requests/s; ratio to 'no key')")
    for kind, rates in figures.items():
        median = statistics.median(rates)
        runs = ", ".join(f"{r:.0f}" for r in rates)
        print(f"  {kind:<20} {median:7.0f} req/s  (runs: {runs})  ratio {median / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
