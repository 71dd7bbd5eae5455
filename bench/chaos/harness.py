"""Shared parts of the chaos scripts: child processes, a Redis and a database of their own, a
webhook receiver that counts deliveries, a steady submitter, and the figures.

Everything here uses only Python, the project's dependencies and the `agentqueue` CLI (run as
`python -m agentqueue.cli`, so the checkout on PYTHONPATH is what runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agentqueue.engine.embedded import free_port, valkey_binary

CLI = [sys.executable, "-m", "agentqueue.cli"]
QUEUE = "webhooks"  # the job type whose runs the receiver can count from outside
TERMINAL = {"completed", "failed", "cancelled"}
WORKER_READY = "started (concurrency"  # a worker's log line once it takes jobs
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_PR_SET_PDEATHSIG = 1


async def poll_until(
    check: Callable[[], Awaitable[bool]], *, what: str, timeout: float,
    child: Child | None = None, interval: float = 0.1,
) -> None:
    """Wait until `check()` is true; fail when `child` exits or `timeout` passes (`what` says
    what did not happen: "<what> within <timeout>s")."""
    deadline = time.monotonic() + timeout
    while not await check():
        if child is not None and not child.alive:
            raise RuntimeError(f"{child.name} exited:\n{child.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout}s")
        await asyncio.sleep(interval)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: SIGTERM the child if this script dies, so nothing outlives a SIGKILLed run."""
    os.setsid()  # Ctrl-C reaches only the script, which stops its children in order
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One child process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged(self, needle: str) -> bool:
        return self.log_path.exists() and needle in self.log()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.alive:
            self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    async def wait_log(self, needle: str, timeout: float = 60.0) -> None:
        async def logged() -> bool:
            return self.logged(needle)

        await poll_until(logged, what=f"{self.name}: no {needle!r}", timeout=timeout, child=self)


def agentqueue(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    return Child(name, [*CLI, *args], env, log_dir / f"{name}.log")


def service_env(
    *, redis_url: str, database_url: str, prefix: str, data_dir: Path, lock_ms: int,
    stalled_ms: int, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of every api/worker process of a run."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_HOST", "DATABASE_URL", "OPENAI_API_KEY",
                        "ANTHROPIC_API_KEY", "JWT_SECRET")}
    env.update({
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "QUEUE_PREFIX": prefix,
        "AGENTQUEUE_DATA_DIR": str(data_dir),
        "QUEUE_LOCK_DURATION_MS": str(lock_ms),
        "QUEUE_STALLED_INTERVAL_MS": str(stalled_ms),
        # The load is the point: neither the rate limit nor the backlog limits may refuse it
        # (a 429 would still be counted apart; `--set` puts a limit back).
        "RATE_LIMIT_PER_MINUTE": "0",
        "MAX_QUEUE_BACKLOG": "0",
        "MAX_TENANT_BACKLOG": "0",
        "REPAIR_INTERVAL_SECONDS": "5",
        "SHUTDOWN_GRACE_SECONDS": "3",
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receiver listens on loopback
        "LOG_LEVEL": "INFO",
    })
    env.update(extra or {})
    return env


async def create_api_key(env: dict[str, str], log_dir: Path) -> str:
    """`agentqueue keys create`; returns the key it prints."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, "keys", "create", "--user", "chaos", "--org", "chaos", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    (log_dir / "keys.log").write_bytes(out[:12] + b"...\n" + err)
    if proc.returncode != 0:
        raise RuntimeError(f"agentqueue keys create failed:\n{err.decode(errors='replace')}")
    return out.decode().split()[0]


async def wait_healthy(base_url: str, api: Child, timeout: float = 60.0) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        async def healthy() -> bool:
            try:
                return (await http.get("/agent/queue/health")).status_code == 200
            except httpx.TransportError:
                return False

        await poll_until(healthy, what="agentqueue api not healthy", timeout=timeout,
                         child=api, interval=0.2)


# --- Redis -------------------------------------------------------------------------------------

def redis_binary() -> str:
    """`redis-server` on PATH, else the Valkey server agentqueue's embedded mode runs."""
    return (shutil.which("redis-server") or shutil.which("valkey-server")
            or str(valkey_binary()))


class RedisServer:
    """A Redis of the script's own: AOF on, in a directory of its own, restartable in place."""

    def __init__(self, data_dir: Path, *, appendfsync: str = "always") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.appendfsync = appendfsync
        self.binary = redis_binary()
        self.child: Child | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 30.0) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--daemonize", "no", "--dir", str(self.data_dir), "--appendonly", "yes",
                "--appendfsync", self.appendfsync, "--save", "",
                "--maxmemory-policy", "noeviction"]
        self.child = Child("redis", argv, {**os.environ}, self.data_dir / "server.log")
        # redis_answers: a server replaying its AOF answers LOADING until done, so keep asking
        await poll_until(lambda: redis_answers(self.url), what=f"{self.binary} did not answer",
                         timeout=timeout, child=self.child, interval=0.05)

    async def stop(self, how: str = "shutdown") -> None:
        """`shutdown` (SHUTDOWN command), `sigterm`, or `sigkill` (a crash: AOF fsync matters)."""
        child = self.child
        if child is None or not child.alive:
            return
        if how == "shutdown":
            client = redis.from_url(self.url, socket_connect_timeout=1)
            with contextlib.suppress(redis.RedisError, OSError):
                await client.shutdown()
            with contextlib.suppress(redis.RedisError, OSError):
                await client.aclose()
        elif how == "sigterm":
            child.proc.terminate()
        else:
            child.proc.kill()
        await asyncio.to_thread(child.stop, 30.0)


async def redis_answers(url: str) -> bool:
    client = redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key of a run (BullMQ's and agentqueue's own). Returns how many."""
    client = redis.from_url(url, decode_responses=True)
    deleted = 0
    try:
        for pattern in (f"{prefix}:*", f"agentqueue:{prefix}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 500):
                deleted += await client.delete(*keys[start:start + 500])
    finally:
        await client.aclose()
    return deleted


# --- Records database --------------------------------------------------------------------------

class RecordsDatabase:
    """A throwaway PostgreSQL database `aq_chaos_<random>` (dropped at the end), or a SQLite
    file in the run's directory when PostgreSQL does not answer or `--sqlite` is given."""

    def __init__(self, admin_url: str | None, run_dir: Path) -> None:
        self.admin_url = admin_url
        self.run_dir = run_dir
        self.name = f"aq_chaos_{uuid.uuid4().hex[:10]}"
        self.url = ""
        self.kind = ""
        self.note = ""
        self._created = False

    async def create(self) -> None:
        if self.admin_url:
            import asyncpg

            admin = make_url(self.admin_url).set(drivername="postgresql")
            try:
                conn = await asyncpg.connect(admin.render_as_string(hide_password=False),
                                             timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self.note = f"PostgreSQL at {admin.render_as_string()} unreachable ({exc})"
            else:
                try:
                    await conn.execute(f'CREATE DATABASE "{self.name}"')
                finally:
                    await conn.close()
                self._created = True
                self.kind = "postgresql"
                self.url = admin.set(drivername="postgresql+asyncpg", database=self.name) \
                    .render_as_string(hide_password=False)
                return
        self.kind = "sqlite"
        self.url = f"sqlite+aiosqlite:///{self.run_dir / 'records.db'}"

    def describe(self) -> str:
        if self.kind == "postgresql":
            return f"PostgreSQL, throwaway database {self.name}"
        return "SQLite in the run directory" + (f" ({self.note})" if self.note else "")

    def engine(self) -> AsyncEngine:
        return create_async_engine(self.url)

    async def drop(self) -> None:
        if not self._created or not self.admin_url:
            return
        import asyncpg

        admin = make_url(self.admin_url).set(drivername="postgresql")
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._created = False


@dataclass
class Record:
    job_id: str
    status: str
    token: str | None
    error: str | None


async def read_records(engine: AsyncEngine) -> dict[str, Record]:
    """Every record of the webhooks queue, by job id."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            text("SELECT job_id, status, data, error FROM jobs WHERE queue = :q"), {"q": QUEUE}
        )).all()
    out = {}
    for job_id, status, data, error in rows:
        if isinstance(data, str):
            data = json.loads(data)
        payload = (data or {}).get("payload") or {}
        token = payload.get("token") if isinstance(payload, dict) else None
        out[str(job_id)] = Record(str(job_id), status, token, error)
    return out


# --- Redis state of the queue ------------------------------------------------------------------

_LISTS = ("wait", "active", "paused")
_ZSETS = ("completed", "failed", "delayed", "prioritized", "waiting-children")
UNFINISHED_STATES = ("wait", "active", "paused", "delayed", "prioritized", "waiting-children")


async def redis_jobs(url: str, prefix: str) -> dict[str, str]:
    """Job id -> BullMQ state, for every job whose hash Redis still holds ("unknown" when the
    hash is in no state list or set)."""
    client = redis.from_url(url, decode_responses=True)
    base = f"{prefix}:{QUEUE}:"
    try:
        state_of: dict[str, str] = {}
        for name in _LISTS:
            for job_id in await client.lrange(base + name, 0, -1):
                state_of[str(job_id)] = name
        for name in _ZSETS:
            for member in await client.zrange(base + name, 0, -1):
                state_of[str(member)] = name
        held = [key[len(base):] async for key in client.scan_iter(match=base + "*", count=1000)]
        return {job_id: state_of.get(job_id, "unknown") for job_id in held if job_id.isdigit()}
    finally:
        await client.aclose()


async def redis_unfinished(url: str, prefix: str) -> int:
    client = redis.from_url(url, decode_responses=True)
    base = f"{prefix}:{QUEUE}:"
    try:
        total = 0
        for name in _LISTS:
            total += await client.llen(base + name)
        for name in ("delayed", "prioritized", "waiting-children"):
            total += await client.zcard(base + name)
        return total
    finally:
        await client.aclose()


def agrees(redis_state: str, record_status: str | None) -> bool:
    """Whether a record's status is what the job's state in Redis says it should be."""
    if record_status is None:
        return False
    if redis_state == "completed":
        return record_status == "completed"
    if redis_state == "failed":
        return record_status in ("failed", "cancelled")
    if redis_state == "active":
        return record_status == "active"
    if redis_state in ("wait", "paused", "delayed", "prioritized", "waiting-children"):
        return record_status in ("pending", "queued", "active")
    return False


# --- The webhook receiver ----------------------------------------------------------------------

@dataclass
class Delivery:
    token: str | None
    delivery: str | None
    attempt: str | None
    answered: bool = False
    at: float = field(default_factory=time.monotonic)


def _peer_gone(sock: socket.socket) -> bool:
    """Whether the client closed its end (a SIGKILLed worker's socket is closed by the kernel)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Receiver:
    """A local HTTP server the webhook jobs POST to; it counts deliveries per submission token."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body).get("payload") or {}
                    token = payload.get("token") if isinstance(payload, dict) else None
                except (ValueError, AttributeError):
                    token = None
                seen = Delivery(token, self.headers.get("X-Agentqueue-Delivery"),
                                self.headers.get("X-Agentqueue-Attempt"))
                with receiver.lock:
                    receiver.deliveries.append(seen)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                if _peer_gone(self.connection):
                    return  # the worker died mid-delivery: this run was not answered
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    self.wfile.flush()
                    seen.answered = True
                except OSError:
                    pass  # the worker died as it was answered

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def by_token(self) -> dict[str | None, list[Delivery]]:
        out: dict[str | None, list[Delivery]] = {}
        with self.lock:
            for seen in self.deliveries:
                out.setdefault(seen.token, []).append(seen)
        return out


# --- Submitting at a steady rate ---------------------------------------------------------------

@dataclass
class Submission:
    token: str
    sent_at: float
    outcome: str = "pending"  # accepted | http_503 | http_<code> | error | timeout
    job_id: str | None = None
    detail: str | None = None
    answered_s: float | None = None  # seconds until the answer (or the timeout)


async def submit_steadily(
    base_url: str, key: str, receiver_url: str, *, rate: float, duration: float,
    attempts: int, timeout: float,
) -> list[Submission]:
    """POST a webhook job every 1/rate seconds for `duration` seconds (open loop: a slow answer
    does not slow the rate), and wait for every answer."""
    done: list[Submission] = []
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=timeout) as http:
        async def one(sub: Submission) -> None:
            body = {"type": "webhook", "maxAttempts": attempts,
                    "data": {"url": receiver_url, "event": "chaos",
                             "payload": {"token": sub.token}}}
            try:
                answer = await http.post("/api/jobs", json=body)
            except httpx.TimeoutException:
                sub.answered_s = time.monotonic() - sub.sent_at
                sub.outcome = "timeout"
                return
            except httpx.HTTPError as exc:
                sub.outcome, sub.detail = "error", type(exc).__name__
                return
            sub.answered_s = time.monotonic() - sub.sent_at
            if answer.status_code == 201:
                sub.outcome = "accepted"
                sub.job_id = str(answer.json()["id"]).rpartition(":")[2]
            else:
                sub.outcome = f"http_{answer.status_code}"
                sub.detail = answer.text[:200]

        tasks = []
        start = time.monotonic()
        total = int(rate * duration)
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sub = Submission(uuid.uuid4().hex, time.monotonic())
            done.append(sub)
            tasks.append(asyncio.create_task(one(sub)))
        await asyncio.gather(*tasks)
    return done


# --- Draining and the figures ------------------------------------------------------------------

async def wait_drained(
    engine: AsyncEngine, redis_url: str, prefix: str, accepted: list[Submission],
    timeout: float,
) -> float:
    """Wait until Redis holds no unfinished job, every accepted job has a finished record, and
    so has every other record of the queue (or `timeout`). Returns the seconds waited."""
    start = time.monotonic()
    ids = {s.job_id for s in accepted if s.job_id is not None}
    last_print = start
    while True:
        try:
            records = await read_records(engine)
            left = sum(1 for i in ids | set(records)
                       if (r := records.get(i)) is None or r.status not in TERMINAL)
            queued = await redis_unfinished(redis_url, prefix)
        except (redis.RedisError, OSError) as exc:
            left, queued = -1, -1
            print(f"  drain: cannot read state yet ({exc})", flush=True)
        waited = time.monotonic() - start
        if left == 0 and queued == 0:
            return waited
        if waited > timeout:
            print(f"  drain: deadline of {timeout:.0f}s passed with {left} records unfinished "
                  f"and {queued} jobs unfinished in Redis", flush=True)
            return waited
        if time.monotonic() - last_print > 5:
            print(f"  drain: {left} records unfinished, {queued} jobs unfinished in Redis",
                  flush=True)
            last_print = time.monotonic()
        await asyncio.sleep(1.0)


@dataclass
class Figures:
    submitted: int = 0
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    lost: int = 0
    ran_more_than_once: int = 0
    ran_again_after_answered: int = 0
    ran_again_without_kill: int = 0
    kills_counted: bool = False
    never_ran: int = 0
    deliveries: int = 0
    disagreeing: int = 0
    redis_held: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refused_with_record: int = 0
    refused_by_records_db: int = 0  # 503s that blame the records database, not Redis
    refused_but_ran: int = 0
    unanswered_with_record: int = 0
    answer_times: list[float] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    failure_reasons: Counter[str] = field(default_factory=Counter)

    def example(self, kind: str, text_: str, limit: int = 5) -> None:
        items = self.examples.setdefault(kind, [])
        if len(items) < limit:
            items.append(text_)


async def measure(
    submissions: list[Submission], receiver: Receiver, engine: AsyncEngine, redis_url: str,
    prefix: str, kill_times: list[float] | None = None,
) -> Figures:
    """The figures of a run. With `kill_times`, a job run again with no kill between its runs
    is counted apart: its lock expired under a live worker."""
    records = await read_records(engine)
    held = await redis_jobs(redis_url, prefix)
    runs = receiver.by_token()
    by_token = {r.token: r for r in records.values() if r.token}
    fig = Figures(submitted=len(submissions), deliveries=len(receiver.deliveries),
                  redis_held=len(held), kills_counted=kill_times is not None)
    fig.answer_times = sorted(s.answered_s for s in submissions if s.answered_s is not None)
    for sub in submissions:
        fig.outcomes[sub.outcome] += 1
        delivered = runs.get(sub.token, [])
        if sub.outcome.startswith("http_"):
            # Refused (a 503, a 429 or another error status): no record, and it never runs.
            if sub.outcome == "http_503" and "records database" in (sub.detail or ""):
                fig.refused_by_records_db += 1
            if sub.token in by_token:
                fig.refused_with_record += 1
                rec = by_token[sub.token]
                fig.example("refused, with a record", f"{sub.outcome}: job {rec.job_id} "
                            f"record {rec.status} ({rec.error})")
            if delivered:
                fig.refused_but_ran += 1
                fig.example("refused, but ran", f"{sub.outcome}: token {sub.token}, "
                            f"{len(delivered)} deliveries")
            continue
        if sub.outcome != "accepted":
            # No answer (timeout, connection error): the job may or may not exist.
            if sub.token in by_token:
                fig.unanswered_with_record += 1
            continue
        fig.accepted += 1
        assert sub.job_id is not None
        record = records.get(sub.job_id)
        status = record.status if record else None
        if status == "completed":
            fig.completed += 1
        elif status in ("failed", "cancelled"):
            fig.failed += 1
            fig.failure_reasons[(record.error or "")[:120] if record else ""] += 1
        elif sub.job_id in held:
            fig.unfinished += 1
            fig.example("unfinished", f"job {sub.job_id}: record {status}, "
                        f"Redis {held[sub.job_id]}")
        else:
            fig.lost += 1
            fig.example("lost", f"job {sub.job_id}: record {status}, not in Redis")
        if len(delivered) > 1:
            fig.ran_more_than_once += 1
            if delivered[0].answered:
                fig.ran_again_after_answered += 1
            if kill_times is not None and not any(
                    delivered[0].at < k < delivered[-1].at for k in kill_times):
                fig.ran_again_without_kill += 1
            fig.example("ran more than once", f"job {sub.job_id}: {len(delivered)} deliveries "
                        f"(attempts {[d.attempt for d in delivered]}), record {status}")
        elif not delivered:
            fig.never_ran += 1
    for job_id, state in held.items():
        record = records.get(job_id)
        if not agrees(state, record.status if record else None):
            fig.disagreeing += 1
            fig.example("disagreeing", f"job {job_id}: Redis {state}, "
                        f"record {record.status if record else 'missing'}")
    return fig


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def print_figures(title: str, fig: Figures, extra: dict[str, Any] | None = None) -> None:
    print(f"\n== {title}")
    print("load average now (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
          + f" on {os.cpu_count()} CPUs")
    print(f"submitted {fig.submitted}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(fig.outcomes.items())))
    times = fig.answer_times
    if times:
        slow = sum(1 for t in times if t > 1.0)
        print(f"answer time: median {times[len(times) // 2]:.2f}s, "
              f"p99 {times[min(len(times) - 1, int(len(times) * 0.99))]:.2f}s, "
              f"max {times[-1]:.2f}s; {slow} answered after more than 1s")
    print(f"accepted {fig.accepted}: completed {fig.completed}, failed {fig.failed}, "
          f"unfinished {fig.unfinished}, lost {fig.lost}")
    print(f"handler runs (receiver deliveries) {fig.deliveries}; ran more than once "
          f"{fig.ran_more_than_once} ({pct(fig.ran_more_than_once, fig.accepted)}), of which "
          f"{fig.ran_again_after_answered} after a delivery the receiver had answered 2xx"
          + (f" and {fig.ran_again_without_kill} with no worker killed between the runs"
             if fig.kills_counted else "")
          + f"; accepted but never ran {fig.never_ran}")
    print(f"jobs Redis still holds {fig.redis_held}; records disagreeing with Redis "
          f"{fig.disagreeing}")
    if fig.failure_reasons:
        print("failure reasons: " + "; ".join(
            f"{n}x {reason!r}" for reason, n in fig.failure_reasons.most_common(5)))
    for kind, items in fig.examples.items():
        print(f"examples, {kind}: " + "; ".join(items))
    outcomes = fig.outcomes
    summary = {
        "accepted": fig.accepted, "completed": fig.completed, "failed": fig.failed,
        "lost": fig.lost, "run_more_than_once": fig.ran_more_than_once,
        "ran_after_answered": fig.ran_again_after_answered,
        **({"ran_again_without_kill": fig.ran_again_without_kill} if fig.kills_counted else {}),
        "disagreeing": fig.disagreeing, "unfinished": fig.unfinished,
        "answered_503": outcomes["http_503"], "of_which_records_db": fig.refused_by_records_db,
        "answered_429": outcomes["http_429"],
        "errors": sum(n for k, n in outcomes.items()
                      if k not in ("accepted", "http_503", "http_429", "timeout")),
        "timeouts": outcomes["timeout"], "refused_with_record": fig.refused_with_record,
        "refused_but_ran": fig.refused_but_ran,
        "unanswered_with_record": fig.unanswered_with_record,
        "slowest_answer_s": round(max(fig.answer_times, default=0.0), 1),
        **(extra or {}),
    }
    print("SUMMARY " + " ".join(f"{k}={v}" for k, v in summary.items()), flush=True)


# --- A run: options, directory, services and report, the same in every script -------------

# (flag, default, help): the type is the default's; False makes a switch; a tuple lists the
# choices, the first being the default.
RUN_OPTIONS: list[tuple[str, Any, str]] = [
    ("--duration", 60.0, "seconds of submitting"),
    ("--rate", 10.0, "job submissions per second"),
    ("--handler-delay", 0.1, "seconds the receiver takes to answer each delivery, so some kills "
                             "and restarts land mid-job"),
    ("--attempts", 3, "maxAttempts per job"),
    ("--lock-ms", 4000, "QUEUE_LOCK_DURATION_MS"),
    ("--stalled-ms", 2000, "QUEUE_STALLED_INTERVAL_MS"),
    ("--drain-timeout", 90.0, "seconds to wait for the queue to drain"),
    ("--request-timeout", 15.0, "seconds a submission may take before it counts as a timeout"),
    ("--postgres-url", os.environ.get("AGENTQUEUE_CHAOS_POSTGRES_URL", DEFAULT_POSTGRES),
     "PostgreSQL server in which to create (and drop) a throwaway database "
     "($AGENTQUEUE_CHAOS_POSTGRES_URL if set)"),
    ("--sqlite", False, "keep the records in SQLite instead of PostgreSQL"),
    ("--keep-logs", False, "keep the run directory with every process's log"),
]


def parse_args(doc: str, options: Iterable[tuple[str, Any, str]],
               argv: list[str] | None = None) -> argparse.Namespace:
    """A script's options: its own, then RUN_OPTIONS, then `--set`. `doc` is the script's
    docstring: its first paragraph describes, the rest (after the usage) is the epilog."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     epilog=doc.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default, help_ in [*options, *RUN_OPTIONS]:
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_)
        elif isinstance(default, tuple):
            parser.add_argument(flag, choices=default, default=default[0],
                                help=f"{help_} (default %(default)s)")
        else:
            parser.add_argument(flag, type=type(default), default=default,
                                help=f"{help_} (default %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the api and worker processes, over "
                             "the script's own settings (repeatable)")
    args = parser.parse_args(argv)
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
    return args


class ChaosRun:
    """What every run has: a directory, a key prefix, a records database, the services'
    environment, an API with a key, the receiver; everything is undone when the run ends."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.AsyncExitStack,
                 run_dir: Path) -> None:
        self.args = args
        self.stack = stack
        self.run_dir = run_dir
        self.prefix = f"chaos-{uuid.uuid4().hex[:10]}"
        self.db = RecordsDatabase(None if args.sqlite else args.postgres_url, run_dir)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, args: argparse.Namespace, kind: str) -> AsyncIterator[ChaosRun]:
        task = asyncio.current_task()
        assert task is not None
        # SIGTERM cancels the run like Ctrl-C does, so the cleanup still happens.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        run_dir = Path(tempfile.mkdtemp(prefix=f"aq-chaos-{kind}-"))
        async with contextlib.AsyncExitStack() as stack:
            if not args.keep_logs:
                stack.callback(shutil.rmtree, run_dir, ignore_errors=True)
            yield cls(args, stack, run_dir)

    async def own_redis(self, appendfsync: str = "always") -> RedisServer:
        """A Redis of the run's own, stopped at the end."""
        server = RedisServer(self.run_dir / "redis", appendfsync=appendfsync)
        await server.start()
        self.stack.push_async_callback(server.stop)
        return server

    async def open_records(self, redis_note: str) -> None:
        """Create the records database, and say where everything is."""
        await self.db.create()
        self.stack.push_async_callback(self.db.drop)
        print(f"{redis_note}; records: {self.db.describe()}")
        print(f"logs in {self.run_dir}" + ("" if self.args.keep_logs
                                            else " (removed at the end)"), flush=True)

    def service_env(self, redis_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return service_env(
            redis_url=redis_url, database_url=self.db.url, prefix=self.prefix,
            data_dir=self.run_dir / "data", lock_ms=self.args.lock_ms,
            stalled_ms=self.args.stalled_ms,
            extra={**(extra or {}), **dict(item.split("=", 1) for item in self.args.set)},
        )

    async def start_api(self, env: dict[str, str]) -> tuple[str, str]:
        """One `agentqueue api`, healthy; returns its base URL and an API key."""
        port = free_port()
        api = agentqueue("api", ["api"], {**env, "PORT": str(port)}, self.run_dir)
        self.stack.callback(api.stop)
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, api)
        return base_url, await create_api_key(env, self.run_dir)

    def start_worker(self, name: str, env: dict[str, str]) -> Child:
        """One `agentqueue worker` of the webhooks queue, stopped at the end (if still alive)."""
        child = agentqueue(name, ["worker", "--queue", QUEUE], env, self.run_dir)
        self.stack.callback(child.stop)
        return child

    def start_receiver(self) -> Receiver:
        receiver = Receiver(self.args.handler_delay)
        receiver.start()
        self.stack.callback(receiver.stop)
        return receiver

    async def submit(self, base_url: str, key: str, receiver: Receiver) -> list[Submission]:
        args = self.args
        return await submit_steadily(base_url, key, receiver.url, rate=args.rate,
                                     duration=args.duration, attempts=args.attempts,
                                     timeout=args.request_timeout)

    async def report(
        self, title: str, submissions: list[Submission], receiver: Receiver, redis_url: str,
        *, kill_times: list[float] | None = None, extra: dict[str, Any] | None = None,
    ) -> None:
        """Wait for the queue to drain, then count and print the figures."""
        accepted = [s for s in submissions if s.outcome == "accepted"]
        engine = self.db.engine()
        self.stack.push_async_callback(engine.dispose)
        drain_s = await wait_drained(engine, redis_url, self.prefix, accepted,
                                     self.args.drain_timeout)
        figures = await measure(submissions, receiver, engine, redis_url, self.prefix,
                                kill_times)
        print_figures(f"{title}, drained in {drain_s:.0f}s", figures, extra)


def run_main(run: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
             args: argparse.Namespace) -> int:
    """Run a script; Ctrl-C or SIGTERM stop it after the cleanup. Exits 0: figures, not a test."""
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; processes, keys, Redis and database cleaned up", file=sys.stderr)
    return 0
