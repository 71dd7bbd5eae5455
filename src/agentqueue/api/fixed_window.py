"""A fixed-window counter kept in Redis, so every API process shares the count.

The request rate limit (`agentqueue.api.limits.RateLimiter`) and the failed-authentication
throttle (`agentqueue.api.auth_throttle.AuthFailureThrottle`) both count with it: `limit`
events per `window_s` seconds per name, each name's window starting with its first event.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from agentqueue.engine.coalesce import coalescer_for

if TYPE_CHECKING:
    import redis.asyncio as redis

# Count one event, and start the window's clock only when the key is new (or lost its expiry),
# all in one atomic step.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class FixedWindowCounter:
    """At most `limit` events per `window_s` seconds per name, under `<key_prefix>:<name>`.

    `disable_hint` ends the message refusing a `limit` under 1 (how to turn the limit off).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        limit: int,
        window_s: float,
        key_prefix: str,
        disable_hint: str,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 ({disable_hint})")
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.client = client
        self.limit = limit
        self.window_s = window_s
        self.key_prefix = key_prefix.rstrip(":")
        # Every request counts here: its commands share pipelines with concurrent requests'.
        self._commands = coalescer_for(client)
        self._hit = self._commands.script(_HIT)

    def key(self, name: str) -> str:
        return f"{self.key_prefix}:{name}"

    async def hit(self, name: str) -> tuple[int, int]:
        """Count one event of `name`: (its count in this window, whole seconds until it ends)."""
        window_ms = max(1, math.ceil(self.window_s * 1000))
        count, ttl_ms = await self._hit(keys=[self.key(name)], args=[window_ms])
        return int(count), _seconds(ttl_ms)

    async def peek(self, name: str) -> tuple[int, int]:
        """`name`'s count in this window (0 outside one) and whole seconds until it ends,
        without counting."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self.key(name))
            pipe.pttl(self.key(name))
            count, ttl_ms = await pipe.execute()
        return (0 if count is None else int(count)), _seconds(ttl_ms)

    async def count(self, name: str) -> int:
        """`name`'s count in this window (0 outside one): `peek` without the time left."""
        count = await self._commands.call("GET", self.key(name))
        return 0 if count is None else int(count)


def _seconds(ttl_ms: int | bytes | str) -> int:
    """A key's remaining lifetime in whole seconds for `Retry-After`: at least 1, also when the
    key just expired or has no expiry (PTTL -2 / -1)."""
    return max(1, math.ceil(int(ttl_ms) / 1000))
