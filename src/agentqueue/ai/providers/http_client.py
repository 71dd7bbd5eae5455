"""The HTTP client under the provider SDKs: aiohttp (the default) or httpx.

Both official SDKs talk HTTP through an httpx-compatible client, httpx by default. At a worker's
concurrency (hundreds of calls in flight) httpx costs several milliseconds of CPU per request:
httpcore's connection pool scans every connection on each request's start and end, so a thousand
calls in flight cost quadratically. Both SDKs ship an aiohttp transport (`DefaultAioHttpClient`,
their `aiohttp` extra) that does the same work for a fraction of that (bench/provider_wait.py
prints both). `AI_HTTP_CLIENT=httpx` goes back to the SDKs' own default.
"""

from __future__ import annotations

from typing import Literal

HttpClientName = Literal["aiohttp", "httpx"]
HTTP_CLIENTS: tuple[HttpClientName, ...] = ("aiohttp", "httpx")
DEFAULT_HTTP_CLIENT: HttpClientName = "aiohttp"


def check_http_client(name: str) -> HttpClientName:
    for known in HTTP_CLIENTS:
        if name == known:
            return known
    raise ValueError(f"unknown HTTP client {name!r}; choose one of {', '.join(HTTP_CLIENTS)}")


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception that `exc` was raised from (or while handling)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def refused_not_timed_out(exc: BaseException) -> BaseException | None:
    """The connection failure under an SDK "timeout" that was none, else None.

    The SDKs' aiohttp transport maps every aiohttp connection error, a refused connection
    included, to httpx's `ConnectTimeout`, so the SDK reports a timeout; its cause says what
    happened.
    """
    cause = root_cause(exc)
    if cause is exc or isinstance(cause, TimeoutError):
        return None
    return cause if isinstance(cause, OSError | ConnectionError) or _is_aiohttp(cause) else None


def _is_aiohttp(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiohttp")
