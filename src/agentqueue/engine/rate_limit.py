"""Counters in Redis that every worker process shares: N per window, for any number of keys
at once, and pauses (a key that blocks until it expires).

A window starts with its first hit and lasts its duration (as BullMQ's own limiter key does);
`take` checks every counter and pause key and then counts on all of them, in one Lua call, so
two processes can never both take the last unit of a window. A hit that costs more than a whole
window (a prompt estimated above a TPM limit) is let through when its window is empty, or it
could never run.

Keys hash to the slot of `hash_tag` when it has one (a cluster's queue prefix), so a Lua call
over several of them works on Redis Cluster too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as redis

# KEYS: counters, then pauses. ARGV[1]: number of counters; then (max, duration ms, cost) each.
# Returns 0 when taken, else the ms until the first blocking key ends.
_TAKE = """
local counters = tonumber(ARGV[1])
local wait = 0
for i = counters + 1, #KEYS do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return wait end
for i = 1, counters do
  local max = tonumber(ARGV[i * 3 - 1])
  local cost = tonumber(ARGV[i * 3 + 1])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current > 0 and current + cost > max then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('DEL', KEYS[i])
    elseif ttl > wait then
      wait = ttl
    end
  end
end
if wait > 0 then return wait end
for i = 1, counters do
  local cost = tonumber(ARGV[i * 3 + 1])
  if cost > 0 then
    redis.call('INCRBY', KEYS[i], cost)
    if redis.call('PTTL', KEYS[i]) < 0 then
      redis.call('PEXPIRE', KEYS[i], ARGV[i * 3])
    end
  end
end
return 0
"""

# Adjust a counter still in its window (a reservation settled with what was really used).
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local value = redis.call('INCRBY', KEYS[1], ARGV[1])
  if value < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
end
return 0
"""

# Running-job sets (sorted sets: member -> when its hold lapses, so a dead worker's holds go).
# KEYS: the sets. ARGV: hold ms, (unused), member, then each set's cap. Returns 0 when held in
# every set, else the number of the first set at its cap. Redis's clock: all processes agree.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapse = now + tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if not redis.call('ZSCORE', KEYS[i], ARGV[3])
      and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], lapse, ARGV[3])
  redis.call('PEXPIREAT', KEYS[i], lapse)
end
return 0
"""


@dataclass(frozen=True)
class Window:
    """At most `max` units per `duration_ms`, counted under `key`; this hit costs `cost`."""

    key: str
    max: int
    duration_ms: int
    cost: int = 1


class WindowCounters:
    def __init__(self, client: redis.Redis, *, namespace: str) -> None:
        """`namespace`: the start of every key (it carries the cluster hash tag, if any)."""
        self.client = client
        self.namespace = namespace
        self._take = client.register_script(_TAKE)
        self._settle = client.register_script(_SETTLE)
        self._hold = client.register_script(_HOLD)

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    async def take(self, windows: Sequence[Window], pauses: Sequence[str] = ()) -> int:
        """Count this hit on every window, or none of them; 0 if taken, else how many ms to
        wait before trying again (a window full, or a pause on)."""
        if not windows and not pauses:
            return 0
        args: list[int] = [len(windows)]
        for window in windows:
            args += [window.max, window.duration_ms, window.cost]
        keys = [w.key for w in windows] + list(pauses)
        return int(await self._take(keys=keys, args=args))

    async def settle(self, key: str, delta: int) -> None:
        """Add `delta` (negative: give back) to a counter, if its window is still running."""
        if delta:
            await self._settle(keys=[key], args=[delta])

    async def pause(self, key: str, ms: int) -> None:
        """Block every `take` naming `key` for `ms` (extends a shorter pause, never shortens)."""
        current = int(await self.client.pttl(key))
        if ms > current:
            await self.client.set(key, 1, px=max(ms, 1))

    async def hold(self, caps: Sequence[tuple[str, int]], member: str, *, for_ms: int) -> int:
        """Count `member` as running in each (set key, cap) for at most `for_ms`, or in none;
        0 if held, else the index (from 1) of the first set at its cap."""
        if not caps:
            return 0
        return int(await self._hold(keys=[key for key, _ in caps],
                                    args=[for_ms, 0, member, *(cap for _, cap in caps)]))

    async def release(self, keys: Sequence[str], member: str) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(key, member)
            await pipe.execute()
