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

from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from agentqueue.api.fixed_window import FixedWindowCounter

if TYPE_CHECKING:
    import redis.asyncio as redis


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
        self.counter = FixedWindowCounter(
            client, limit=limit, window_s=window_s, key_prefix=key_prefix,
            disable_hint="install no throttle to disable it",
        )

    async def check(self, address: str) -> None:
        """Raise 429 with `Retry-After` when `address` has used up its failures."""
        if await self.counter.count(address) < self.counter.limit:
            return  # the common case, in one command
        count, retry_after = await self.counter.peek(address)
        if count < self.counter.limit:
            return
        raise HTTPException(
            status_code=429,
            detail=(
                f"too many failed authentication attempts from this address "
                f"({self.counter.limit} per {self.counter.window_s:g} s); "
                f"try again in {retry_after} s"
            ),
            headers={"Retry-After": str(retry_after)},
        )

    async def failed(self, address: str) -> None:
        """Count one failed authentication of `address`."""
        await self.counter.hit(address)
