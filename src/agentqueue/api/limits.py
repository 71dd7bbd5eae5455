"""Limits that keep one caller from exhausting the service: request rate, body size, page size.

- `RateLimiter`: `limit` requests per `window_s` for each caller (API key, JWT subject), counted
  in Redis so every API process shares the budget; over it, 429 with `Retry-After`.
- `BodySizeLimit`: a pure-ASGI middleware answering 413 to a request body over `max_bytes`,
  whether it declares its length or streams it.
- `page_limit`: cap a list endpoint's `limit` parameter.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fastapi import HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentqueue.api.fixed_window import FixedWindowCounter

if TYPE_CHECKING:
    import redis.asyncio as redis

    from agentqueue.api.auth import Principal


class RateLimiter:
    """`limit` requests per `window_s` seconds per caller, a fixed window kept in Redis.

    A caller's window starts with its first request and lasts `window_s`; the request that
    goes over `limit` gets 429 with `Retry-After` = seconds until the window ends. Budgets are
    per API key (`key:<id>`), per JWT subject and organization (`jwt:[<org>, <sub>]`), and one
    for the local user, which is only limited with `limit_local=True`. Keys live under
    `<key_prefix>:<caller>`.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        limit: int,
        window_s: float = 60.0,
        key_prefix: str = "agentqueue:ratelimit",
        limit_local: bool = False,
    ) -> None:
        self.counter = FixedWindowCounter(
            client, limit=limit, window_s=window_s, key_prefix=key_prefix,
            disable_hint="install no RateLimiter to disable it",
        )
        self.limit_local = limit_local

    async def check(self, principal: Principal) -> None:
        """Count one request of `principal`; raise 429 with `Retry-After` when over the limit."""
        if principal.via == "local" and not self.limit_local:
            return
        allowed, retry_after = await self.hit(principal.rate_limit_id)
        if not allowed:
            raise HTTPException(
                status_code=429,
                detail=(
                    f"rate limit exceeded: {self.counter.limit} requests per "
                    f"{self.counter.window_s:g} s"
                ),
                headers={"Retry-After": str(retry_after)},
            )

    async def hit(self, caller: str) -> tuple[bool, int]:
        """Count one request of `caller`: (allowed, whole seconds until its window ends)."""
        count, retry_after = await self.counter.hit(caller)
        return count <= self.counter.limit, retry_after


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body passes the limit.

    An HTTPException, so FastAPI re-raises it from its body reading (instead of turning it into
    a 400) and the app's handler renders it `{"success": false, "message": ...}` with 413.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request body over {max_bytes} bytes")


class BodySizeLimit:
    """Pure-ASGI middleware: 413 for a request body over `max_bytes`.

    A declared `Content-Length` over the limit is refused before the app runs; a body without
    one (chunked) is counted as the app reads it, and reading fails with 413 as soon as it
    passes the limit, so at most `max_bytes` plus one chunk are ever held. WebSocket and
    lifespan traffic pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_bytes: int,
                 by_path: dict[str, int] | None = None) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths with a limit of their own (uploads, streamed to disk by their route).
        self.by_path = by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.by_path.get(scope.get("path", ""), self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            await self._reject(send, max_bytes)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception as exc:
            # Reached only when nothing inside rendered the error (a bare ASGI app, or an
            # exception group from a task group); once a response started, it is too late.
            if started or not _is_body_too_large(exc):
                raise
            await self._reject(send, max_bytes)

    async def _reject(self, send: Send, max_bytes: int) -> None:
        body = json.dumps(
            {"success": False, "message": f"request body over {max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length itself
    return None


def _is_body_too_large(exc: BaseException) -> bool:
    if isinstance(exc, BodyTooLarge):
        return True
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(BodyTooLarge)
        return matched is not None and rest is None
    return False


def page_limit(limit: int, cap: int) -> int:
    """The number of items a list endpoint returns for a requested `limit`.

    A `limit` over `cap` is lowered to `cap` rather than refused, so a client asking for
    "everything" still gets a page (and pages on with its offset or cursor); a `limit` under 1
    is a client error (400), never silently "no limit".
    """
    if limit < 1:
        raise HTTPException(status_code=400, detail="limit must be at least 1")
    return min(limit, cap)
