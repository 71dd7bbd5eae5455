"""Redis connections built the way the engine needs them (see DESIGN.md, engine rules).

Three deployments, told apart by the URL's scheme (see `RedisTarget`), so that every part of the
service that is handed a URL (workers, their cancel listeners, the health probe, child
processes) reaches the same Redis the same way:
- `redis://` / `rediss://`: one server;
- `redis+cluster://host:port[,host:port…]`: a Redis Cluster (`RedisCluster`); every key of a
  queue must hash to one slot, so its prefix carries a hash tag (`{bull}`);
- `redis+sentinel://host:port[,host:port…]/<master>[/<db>]`: the primary that Redis Sentinel
  names, found again after a failover.

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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import redis.asyncio as redis
from redis import __version__ as _REDIS_VERSION
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import AbstractBackoff, ExponentialBackoff, NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    ExecAbortError,
    MovedError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

from agentqueue.engine.health import RedisHealth
from agentqueue.engine.slot_primary import SlotLocator, slot_connection_class
from agentqueue.engine.topology import RedisTarget

# What a failed Redis call raises: a cluster client that reaches no node raises
# RedisClusterException, which is not a RedisError.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, RedisClusterException)

# Headroom over a worker's concurrency: the blocking marker wait, lock renewal, stalled checks.
_POOL_HEADROOM = 10
# How long a command waits for a free pooled connection before giving up.
_POOL_WAIT_S = 30
_RETRY_ON = [BusyLoadingError, ConnectionError, TimeoutError]
# Sentinels answer at once or not at all: a dead one must not hold up finding the primary.
_SENTINEL_TIMEOUT_S = 1.0
# What every connection tells the server (CLIENT SETINFO), made once: left to redis-py, each new
# connection looks its version up in the installed packages' metadata (~1 ms of CPU each).
_DRIVER_INFO = DriverInfo(lib_version=_REDIS_VERSION)


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
    # A cluster client's connections report themselves (`ClusterClient`).
    pool = getattr(client, "connection_pool", None)
    watch = SendWatch(tracked=isinstance(pool, TrackedConnectionPool)
                      or isinstance(client, ClusterClient))
    token = _watch.set(watch)
    try:
        yield watch
    finally:
        _watch.reset(token)


def note_sent(may_have_sent: bool) -> None:
    """Tell this task's `watch_sends` that another task sent its commands for it (see
    `agentqueue.engine.coalesce`), and whether they may have reached Redis."""
    watch = _watch.get()
    if watch is not None and may_have_sent:
        watch.connected = True


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


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


async def open_pubsub(client: redis.Redis) -> PubSub:
    """`client.pubsub()`, with a cluster client connected first: its pub/sub looks up the node
    of a channel's slot in a map of slots that only connecting fills."""
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client.pubsub()


def socket_timeout_of(client: redis.Redis) -> float | None:
    """The read timeout `client`'s connections have (None: they wait as long as it takes)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = pool.connection_kwargs if pool is not None else getattr(client, "connection_kwargs",
                                                                     {})
    return cast(float | None, kwargs.get("socket_timeout"))


class TrackedSentinelPool(SentinelConnectionPool, TrackedConnectionPool):
    """`TrackedConnectionPool` (blocking, reporting hand-outs) whose connections go to the
    primary Sentinel names, asked again whenever a connection to it is made."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # closing the client: the sentinels' connections go too
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


# Answers meaning a slot is elsewhere or moving: the transaction did nothing.
REROUTED = (AskError, ClusterDownError, ExecAbortError, MovedError, TryAgainError)


class _ReportsSends(AbstractConnection):
    """A connection that tells `watch_sends` once it is connected and about to send: a cluster
    has a pool per node, none of them ours, so its connections report instead."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect()  # a failure here sent nothing
        watch = _watch.get()
        if watch is not None:
            watch.connected = True
        await super().send_packed_command(command, check_health)


class _TrackedConnection(_ReportsSends, Connection):
    pass


class _TrackedSSLConnection(_ReportsSends, SSLConnection):
    pass


class ClusterClient(RedisCluster):
    """A `RedisCluster` whose connections report to `watch_sends`, and that runs MULTI/EXEC
    transactions at full speed (`transaction`): on a plain client of the primary holding the
    keys' slot. redis-py's own transactional cluster pipeline runs every queued command
    through a new thread and event loop, blocking the caller's loop about a millisecond each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # RedisCluster takes no connection class; the nodes it makes read it from here.
        ssl = issubclass(self.connection_kwargs["connection_class"], SSLConnection)
        self.connection_kwargs["connection_class"] = (
            _TrackedSSLConnection if ssl else _TrackedConnection)
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = self.connection_kwargs["connection_class"]
        self._primaries: dict[str, redis.Redis] = {}

    async def primary_for(self, key: str) -> redis.Redis:
        """A client of the primary that holds `key`'s slot now."""
        await self.initialize()  # connects the first time; a no-op after
        node = self.get_node_from_key(key)
        assert node is not None
        if node.name not in self._primaries:
            pool = redis.ConnectionPool(connection_class=node.connection_class,
                                        **node.connection_kwargs)
            self._primaries[node.name] = redis.Redis.from_pool(pool)
        return self._primaries[node.name]

    async def refresh_slots(self) -> None:
        """Read the map of slots again (after a MOVED or ASK answer)."""
        await self.nodes_manager.initialize()

    async def aclose(self, *args: Any, **kwargs: Any) -> None:
        primaries, self._primaries = list(self._primaries.values()), {}
        for client in primaries:
            await client.aclose()
        await super().aclose(*args, **kwargs)


@asynccontextmanager
async def transaction(client: redis.Redis, key: str) -> AsyncIterator[Pipeline]:
    """A MULTI/EXEC pipeline for commands on `key` (and keys of its slot): the client's own,
    or on a cluster one on the primary holding the slot (see `ClusterClient`). After a MOVED
    answer the map of slots is read again, and the error raised: nothing was done."""
    target = await client.primary_for(key) if isinstance(client, ClusterClient) else client
    try:
        async with target.pipeline(transaction=True) as pipe:
            yield pipe
    except REROUTED:
        if isinstance(client, ClusterClient):
            await client.refresh_slots()
        raise


def _client(target: RedisTarget, pool_kwargs: dict[str, Any], *,
            health: RedisHealth | None = None) -> redis.Redis:
    """A client of `target` with the given connection settings (see `connect`)."""
    pool_kwargs = {**pool_kwargs, "driver_info": _DRIVER_INFO}
    if target.kind == "standalone":
        pool = TrackedConnectionPool.from_url(target.url, **pool_kwargs)
        pool.health = health
        # from_pool: closing the client closes its pool too.
        return redis.Redis.from_pool(pool)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        connection = {k: v for k, v in pool_kwargs.items() if k != "timeout"}
        sentinel = Sentinel(
            list(target.nodes),
            sentinel_kwargs={
                "password": target.sentinel_password, "decode_responses": True,
                "socket_timeout": _SENTINEL_TIMEOUT_S,
                "socket_connect_timeout": _SENTINEL_TIMEOUT_S,
                "retry": Retry(NoBackoff(), 0), "ssl": target.ssl,
            },
        )
        client = sentinel.master_for(
            target.master, redis_class=redis.Redis, connection_pool_class=TrackedSentinelPool,
            timeout=pool_kwargs["timeout"], db=target.db, ssl=target.ssl, **auth, **connection)
        cast(TrackedSentinelPool, client.connection_pool).health = health
        return client
    # The cluster's pools are per node and do not wait for a free connection (a full one
    # raises): leave them unbounded rather than fail a burst. Its client retries commands
    # itself, refreshing its map of slots after a failover or a MOVED answer.
    kwargs = {k: v for k, v in pool_kwargs.items()
              if k not in ("timeout", "max_connections", "retry_on_error")}
    cluster = ClusterClient(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        ssl=target.ssl, **auth, **kwargs)
    # Typed as Redis: the commands the service sends, pipelines, scripts and pub/sub all
    # exist on RedisCluster with the same signatures.
    return cast(redis.Redis, cluster)


def connect(url: str, *, max_connections: int = 50) -> redis.Redis:
    """A pooled asyncio client for `url`.

    - decode_responses: the bullmq package parses job hashes as str; bytes yield empty jobs.
    - socket_timeout=None: a timeout shorter than BZPOPMIN's block stalls idle workers.
    - the pool is sized by the caller: redis-py caps it at 100 otherwise, which silently
      limits a worker's real concurrency.
    - a blocking pool: a burst beyond the pool's size waits for a free connection instead of
      failing with "Too many connections".
    - connect timeout and retries so a restarting server is waited for, not fatal.

    A `redis+cluster://` URL gives a `RedisCluster`, a `redis+sentinel://` one a client of the
    primary Sentinel names (see `RedisTarget`), both with these settings.
    """
    return _client(RedisTarget.parse(url), {
        "timeout": _POOL_WAIT_S,
        "decode_responses": True,
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "max_connections": max_connections,
        "retry": Retry(ExponentialBackoff(cap=2, base=0.05), retries=5),
        "retry_on_error": _RETRY_ON,
    })


async def connect_to_slot(url: str, key: str, *, max_connections: int = 50) -> redis.Redis:
    """`connect(url)`, except on a cluster: there, a plain client of the primary that holds
    `key`'s slot. For a caller that pipelines raw commands on the keys of one slot (the worker
    loop's `CommandChannel`), which a cluster client cannot route. Its connections find the
    slot's primary when they connect, so after a failover they reach the new one (see
    `slot_primary`)."""
    target = RedisTarget.parse(url)
    if target.kind != "cluster":
        return connect(url, max_connections=max_connections)
    locator = SlotLocator(list(target.nodes), key, username=target.username,
                          password=target.password, ssl=target.ssl)
    host, port = await locator.primary()  # fails now, not at the first command, if none answers
    auth = ""
    if target.username or target.password:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
    scheme = "rediss" if target.ssl else "redis"
    client = connect(f"{scheme}://{auth}{host}:{port}/0", max_connections=max_connections)
    client.connection_pool.connection_class = slot_connection_class(locator, ssl=target.ssl)
    return client


def connect_for_requests(
    url: str, *, health: RedisHealth, timeout_s: float = 1.0, max_connections: int = 50
) -> redis.Redis:
    """A client for the API's request path: no command waits on Redis much longer than
    `timeout_s` (connect, write, read, one retry), and none at all while `health` says Redis
    is down. No blocking reads on it: they would time out."""
    return _client(RedisTarget.parse(url), {
        "timeout": max(5 * timeout_s, 1.0),  # a free connection: commands hold one ~timeout_s
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "max_connections": max_connections,
        # One quick retry: a pooled connection the server closed is reopened, not reported.
        "retry": ReportingRetry(ExponentialBackoff(cap=0.1, base=0.02), 1, health=health),
        "retry_on_error": _RETRY_ON,
    }, health=health)


def connect_probe(url: str, *, timeout_s: float) -> redis.Redis:
    """A client for health probes: short timeouts, no retries (one answer or failure)."""
    return _client(RedisTarget.parse(url), {
        "timeout": timeout_s, "decode_responses": True, "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s, "max_connections": 2,
        "retry": Retry(NoBackoff(), 0), "retry_on_error": [],
    })


def pool_size_for(concurrency: int) -> int:
    return concurrency + _POOL_HEADROOM
