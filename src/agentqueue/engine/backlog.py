"""How many jobs a queue holds that no worker has taken yet, from Redis in one round trip."""

from __future__ import annotations

import redis.asyncio as redis


async def queued_jobs(client: redis.Redis, *, prefix: str, queue: str) -> int:
    """Waiting (plain and paused lists), prioritized and delayed jobs of `queue`."""
    base = f"{prefix}:{queue}:"
    async with client.pipeline(transaction=False) as pipe:
        pipe.llen(base + "wait")
        pipe.llen(base + "paused")
        pipe.zcard(base + "prioritized")
        pipe.zcard(base + "delayed")
        counts = await pipe.execute()
    return sum(int(n) for n in counts)
