"""Throttling failed authentication per client address, so keys cannot be guessed at speed.

Every request that presents credentials (an `Authorization` header) and is refused with 401
counts one failure against its client address, in Redis so every API process shares the
count. Once an address has `limit` failures within a window, every request from it that
presents credentials is answered 429 with `Retry-After` until the window ends, without the
credentials being checked: a right guess is then no different from a wrong one. Requests
without credentials (protected mode, the public health answer) are never throttled. A success
does not reset the count: the window simply ends.

Behind a reverse proxy the client address is the proxy's unless uvicorn resolves the real one
from `X-Forwarded-For` (it does by default for a proxy on 127.0.0.1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    import redis.asyncio as redis

# Count one failure; start the window's clock only when the key is new (or lost its expiry).
_FAIL = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""


def client_address(request: Request) -> str:
    """The address failures are counted against ("unknown" when the server gives none)."""
    return request.client.host if request.client and request.client.host else "unknown"


class AuthFailureThrottle:
    """At most `limit` failed authentications per client address per `window_s` seconds."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        limit: int,
        window_s: float = 60.0,
        key_prefix: str = "agentqueue:authfail",
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1 (install no throttle to disable it)")
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.client = client
        self.limit = limit
        self.window_s = window_s
        self.key_prefix = key_prefix.rstrip(":")
        self._fail = client.register_script(_FAIL)

    def _key(self, address: str) -> str:
        return f"{self.key_prefix}:{address}"

    async def check(self, address: str) -> None:
        """Raise 429 with `Retry-After` when `address` has used up its failures."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self._key(address))
            pipe.pttl(self._key(address))
            count, ttl_ms = await pipe.execute()
        if count is None or int(count) < self.limit:
            return
        retry_after = max(1, math.ceil(int(ttl_ms) / 1000)) if int(ttl_ms) > 0 else 1
        raise HTTPException(
            status_code=429,
            detail=(
                f"too many failed authentication attempts from this address "
                f"({self.limit} per {self.window_s:g} s); try again in {retry_after} s"
            ),
            headers={"Retry-After": str(retry_after)},
        )

    async def failed(self, address: str) -> None:
        """Count one failed authentication of `address`."""
        window_ms = max(1, math.ceil(self.window_s * 1000))
        await self._fail(keys=[self._key(address)], args=[window_ms])
