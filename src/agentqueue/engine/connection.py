"""Redis connections built the way the engine needs them (see DESIGN.md, engine rules)."""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

# Headroom over a worker's concurrency: the blocking marker wait, lock renewal, stalled checks.
_POOL_HEADROOM = 10
# How long a command waits for a free pooled connection before giving up.
_POOL_WAIT_S = 30


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
    pool = redis.BlockingConnectionPool.from_url(
        url,
        timeout=_POOL_WAIT_S,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=2, base=0.05), retries=5),
        retry_on_error=[BusyLoadingError, ConnectionError, TimeoutError],
    )
    # from_pool: closing the client closes its pool too.
    return redis.Redis.from_pool(pool)


def pool_size_for(concurrency: int) -> int:
    return concurrency + _POOL_HEADROOM
