"""Redis connections built the way the engine needs them (see DESIGN.md, engine rules)."""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

# Headroom over a worker's concurrency: the blocking marker wait, lock renewal, stalled checks.
_POOL_HEADROOM = 10


def connect(url: str, *, max_connections: int = 50) -> redis.Redis:
    """A pooled asyncio client for `url`.

    - decode_responses: the bullmq package parses job hashes as str; bytes yield empty jobs.
    - socket_timeout=None: a timeout shorter than BZPOPMIN's block stalls idle workers.
    - the pool is sized by the caller: redis-py caps it at 100 otherwise, which silently
      limits a worker's real concurrency.
    - connect timeout and retries so a restarting server is waited for, not fatal.
    """
    return redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=2, base=0.05), retries=5),
        retry_on_error=[BusyLoadingError, ConnectionError, TimeoutError],
    )


def pool_size_for(concurrency: int) -> int:
    return concurrency + _POOL_HEADROOM
