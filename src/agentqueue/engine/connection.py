"""Redis connections built the way the engine needs them (see DESIGN.md, engine rules).

Two kinds of client:
- `connect`: for workers and anything that blocks on Redis (BZPOPMIN, XREAD BLOCK, pub/sub):
  no socket timeout, patient retries.
- `connect_for_requests`: for the API's request path, which must answer within about a second
  whatever Redis does: every command is bounded by a short timeout, and while Redis is known to
  be down (`RedisHealth`) commands are refused at once. Never use it for blocking reads.

Both pools record whether a caller got a connection (`watch_sends`): a command that failed
before any connection was handed out was certainly never sent to Redis.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff, ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from agentqueue.engine.health import RedisHealth

# Headroom over a worker's concurrency: the blocking marker wait, lock renewal, stalled checks.
_POOL_HEADROOM = 10
# How long a command waits for a free pooled connection before giving up.
_POOL_WAIT_S = 30
_RETRY_ON = [BusyLoadingError, ConnectionError, TimeoutError]


@dataclass
class SendWatch:
    """What one caller's Redis commands got as far as (see `watch_sends`)."""

    tracked: bool  # the client's pool reports hand-outs; if not, assume the worst
    connected: bool = False  # a connection was handed out: a command may have been sent

    @property
    def may_have_sent(self) -> bool:
        return self.connected or not self.tracked


_watch: ContextVar[SendWatch | None] = ContextVar("agentqueue_send_watch", default=None)


@contextmanager
def watch_sends(client: redis.Redis) -> Iterator[SendWatch]:
    """Within the block, note whether `client` handed this task a connection.

    Until it does, nothing can have been written to Redis: the pool refused (Redis known to be
    down, no free connection) or connecting failed. Once it has, a failure may come after the
    command reached Redis (a timeout, a dropped connection), and the command may have run.
    """
    watch = SendWatch(tracked=isinstance(client.connection_pool, TrackedConnectionPool))
    token = _watch.set(watch)
    try:
        yield watch
    finally:
        _watch.reset(token)


class TrackedConnectionPool(redis.BlockingConnectionPool):
    """A blocking pool that reports hand-outs to `watch_sends` and, given a `RedisHealth`,
    refuses without waiting while Redis is known to be down."""

    health: RedisHealth | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if self.health is not None:
            self.health.check()
        connection = await super().get_connection(*args, **kwargs)
        watch = _watch.get()
        if watch is not None:
            watch.connected = True
        return connection


class ReportingRetry(Retry):
    """redis-py's retry policy that tells `health` when Redis could not be reached after all."""

    def __init__(self, backoff: AbstractBackoff, retries: int, *, health: RedisHealth) -> None:
        super().__init__(backoff, retries)
        self.health = health

    async def call_with_retry(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().call_with_retry(*args, **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            self.health.failed(exc)
            raise

    def __deepcopy__(self, memo: dict[int, Any]) -> ReportingRetry:
        # Each connection deep-copies its retry policy; they all report to the same monitor.
        copied = ReportingRetry(copy.deepcopy(self._backoff, memo), self._retries,
                                health=self.health)
        copied.update_supported_errors(self._supported_errors)
        return copied


def connect(url: str, *, max_connections: int = 50) -> redis.Redis:
    """A pooled asyncio client for `url`.

    - decode_responses: the bullmq package parses job hashes as str; bytes yield empty jobs.
    - socket_timeout=None: a timeout shorter than BZPOPMIN's block stalls idle workers.
    - the pool is sized by the caller: redis-py caps it at 100 otherwise, which silently
      limits a worker's real concurrency.
    - a blocking pool: a burst beyond the pool's size waits for a free connection instead of
      failing with "Too many connections".
    - connect timeout and retries so a restarting server is waited for, not fatal.
    """
    pool = TrackedConnectionPool.from_url(
        url,
        timeout=_POOL_WAIT_S,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=2, base=0.05), retries=5),
        retry_on_error=_RETRY_ON,
    )
    # from_pool: closing the client closes its pool too.
    return redis.Redis.from_pool(pool)


def connect_for_requests(
    url: str, *, health: RedisHealth, timeout_s: float = 1.0, max_connections: int = 50
) -> redis.Redis:
    """A client for the API's request path: no command waits on Redis much longer than
    `timeout_s` (connect, write, read, one retry), and none at all while `health` says Redis
    is down. No blocking reads on it: they would time out."""
    pool = TrackedConnectionPool.from_url(
        url,
        timeout=max(5 * timeout_s, 1.0),  # a free connection: commands hold one ~timeout_s
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
        # One quick retry: a pooled connection the server closed is reopened, not reported.
        retry=ReportingRetry(ExponentialBackoff(cap=0.1, base=0.02), 1, health=health),
        retry_on_error=_RETRY_ON,
    )
    pool.health = health
    return redis.Redis.from_pool(pool)


def pool_size_for(concurrency: int) -> int:
    return concurrency + _POOL_HEADROOM
