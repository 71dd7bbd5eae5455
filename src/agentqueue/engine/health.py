"""Whether Redis is reachable, as this process last saw it, so requests fail fast when it is not.

A failure to reach Redis (refused, timed out, closed, still loading) marks the backend down; from
then on the request client refuses at once (`RedisUnavailable`) instead of every request waiting
out connect timeouts and retries. A background probe pings Redis on a connection of its own and
marks the backend up again as soon as it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as redis
from redis.exceptions import ConnectionError

log = logging.getLogger("agentqueue.redis")


class RedisUnavailable(ConnectionError):
    """Refused without touching the network: Redis is known to be down."""


class RedisHealth:
    def __init__(self, url: str, *, probe_interval_s: float = 0.5, timeout_s: float = 1.0) -> None:
        self.url = url
        self.probe_interval_s = probe_interval_s
        self.timeout_s = timeout_s
        self._up = True
        self._probe: asyncio.Task[None] | None = None
        self._client: redis.Redis | None = None

    @property
    def up(self) -> bool:
        return self._up

    def check(self) -> None:
        """Raise `RedisUnavailable` while Redis is known to be down."""
        if not self._up:
            raise RedisUnavailable("Redis is unreachable (waiting for it to come back)")

    def failed(self, error: BaseException) -> None:
        """Redis could not be reached: refuse until a probe gets an answer."""
        if isinstance(error, RedisUnavailable):
            return
        if self._up:
            log.warning("Redis unreachable (%s: %s); answering 503 until it is back",
                        type(error).__name__, error)
            self._up = False
        if self._probe is None or self._probe.done():
            # Without a running loop (a sync caller) the next async failure starts the probe.
            with contextlib.suppress(RuntimeError):
                self._probe = asyncio.get_running_loop().create_task(
                    self._probe_until_up(), name="redis-health-probe")

    async def _probe_until_up(self) -> None:
        if self._client is None:
            from agentqueue.engine.connection import connect_probe  # it imports this module

            # Its own connection, no retries: one short answer or failure per probe.
            self._client = connect_probe(self.url, timeout_s=self.timeout_s)
        while True:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await self._client.ping()
            except Exception:  # noqa: BLE001 - any failure means "still down"
                continue
            log.info("Redis reachable again")
            self._up = True
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
