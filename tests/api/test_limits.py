"""Limits: per-caller request rate (real Redis), request body size, list page size."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
import redis.asyncio as redis
from fastapi import Depends, FastAPI, Request
from starlette.types import Receive, Scope, Send

from agentqueue.api.auth import Authenticator, Principal, current_principal
from agentqueue.api.errors import install_error_handlers
from agentqueue.api.limits import BodySizeLimit, RateLimiter, page_limit
from tests.support.waiting import eventually

SECRET = "test-secret-" + "0123456789abcdef" * 4


def key_principal(key_id: int) -> Principal:
    return Principal(user_id=f"user{key_id}", org_id="acme", via="api_key", key_id=key_id)


def limiter(client: redis.Redis, prefix: str, **options: Any) -> RateLimiter:
    options.setdefault("limit", 3)
    return RateLimiter(client, key_prefix=f"agentqueue:{prefix}:ratelimit", **options)


async def status_of(rate: RateLimiter, who: Principal) -> int:
    try:
        await rate.check(who)
    except Exception as exc:
        return int(getattr(exc, "status_code", 0))
    return 200


# --- rate limit -------------------------------------------------------------------------------


async def test_over_the_limit_answers_429_with_retry_after(
    client: redis.Redis, prefix: str
) -> None:
    rate = limiter(client, prefix, limit=3, window_s=60)
    alice = key_principal(1)
    for _ in range(3):
        await rate.check(alice)
    with pytest.raises(Exception) as caught:
        await rate.check(alice)
    exc: Any = caught.value
    assert exc.status_code == 429
    assert exc.detail == "rate limit exceeded: 3 requests per 60 s"
    assert 1 <= int(exc.headers["Retry-After"]) <= 60


async def test_each_key_has_its_own_budget(client: redis.Redis, prefix: str) -> None:
    rate = limiter(client, prefix, limit=2, window_s=60)
    alice, bob = key_principal(1), key_principal(2)
    assert [await status_of(rate, alice) for _ in range(3)] == [200, 200, 429]
    assert [await status_of(rate, bob) for _ in range(3)] == [200, 200, 429]
    # JWT callers are budgeted by subject, apart from keys
    carol = Principal(user_id="carol", via="jwt")
    assert await status_of(rate, carol) == 200


async def test_one_jwt_subject_in_two_organizations_has_two_budgets(
    client: redis.Redis, prefix: str
) -> None:
    rate = limiter(client, prefix, limit=1, window_s=60)
    acme = Principal(user_id="alice", org_id="acme", via="jwt")
    assert [await status_of(rate, acme) for _ in range(2)] == [200, 429]
    # Another organization's alice (or one without an organization) is someone else.
    assert await status_of(rate, Principal(user_id="alice", org_id="globex", via="jwt")) == 200
    assert await status_of(rate, Principal(user_id="alice", via="jwt")) == 200


async def test_budget_comes_back_when_the_window_ends(client: redis.Redis, prefix: str) -> None:
    rate = limiter(client, prefix, limit=1, window_s=0.3)
    alice = key_principal(1)
    await rate.check(alice)
    assert await status_of(rate, alice) == 429

    async def allowed_again() -> bool:
        return await status_of(rate, alice) == 200

    await eventually(allowed_again, timeout=10, what="a new rate-limit window")


async def test_the_budget_is_shared_through_redis(client: redis.Redis, prefix: str) -> None:
    # Two API processes = two limiters over one Redis: one budget.
    first, second = limiter(client, prefix, limit=2), limiter(client, prefix, limit=2)
    alice = key_principal(7)
    assert await status_of(first, alice) == 200
    assert await status_of(second, alice) == 200
    assert await status_of(first, alice) == 429
    assert await client.exists(f"agentqueue:{prefix}:ratelimit:key:7")


async def test_local_user_is_not_limited_unless_asked(client: redis.Redis, prefix: str) -> None:
    local = Principal(user_id="local", role="admin", via="local")
    free = limiter(client, prefix, limit=1)
    assert [await status_of(free, local) for _ in range(5)] == [200] * 5
    strict = limiter(client, prefix, limit=1, limit_local=True)
    assert [await status_of(strict, local) for _ in range(2)] == [200, 429]


class _NoRecords:
    """Records are not consulted for JWT callers; anything else would be a bug here."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"records.{name} used")


@pytest.fixture
async def limited_app(client: redis.Redis, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.state.auth = Authenticator(_NoRecords(), SECRET)  # type: ignore[arg-type]
    app.state.rate_limiter = limiter(client, prefix, limit=2, window_s=60)

    @app.get("/me")
    async def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, str]:
        return {"user": principal.user_id}

    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_the_auth_dependency_applies_the_rate_limit(
    limited_app: httpx.AsyncClient,
) -> None:
    def bearer(sub: str) -> dict[str, str]:
        token = jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, SECRET, "HS256")
        return {"Authorization": f"Bearer {token}"}

    codes = [(await limited_app.get("/me", headers=bearer("ann"))).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = await limited_app.get("/me", headers=bearer("ann"))
    assert refused.json() == {
        "success": False,
        "message": "rate limit exceeded: 2 requests per 60 s",
    }
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert (await limited_app.get("/me", headers=bearer("ben"))).status_code == 200


def test_limiter_settings_are_checked() -> None:
    client = redis.Redis()  # never connects: the settings are refused first
    with pytest.raises(ValueError):
        RateLimiter(client, limit=0)
    with pytest.raises(ValueError):
        RateLimiter(client, limit=1, window_s=0)


# --- body size --------------------------------------------------------------------------------


def body_app(max_bytes: int) -> tuple[Any, list[int]]:
    app = FastAPI()
    install_error_handlers(app)
    seen: list[int] = []

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"bytes": len(body)}

    @app.post("/json")
    async def as_json(payload: dict[str, Any]) -> dict[str, int]:
        seen.append(len(payload))
        return {"keys": len(payload)}

    return BodySizeLimit(app, max_bytes=max_bytes), seen


async def post(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.post(path, **kwargs)


async def test_a_body_within_the_limit_is_served() -> None:
    app, seen = body_app(100)
    response = await post(app, "/echo", content=b"x" * 100)
    assert response.status_code == 200
    assert response.json() == {"bytes": 100}
    assert (await post(app, "/json", json={"a": 1})).json() == {"keys": 1}
    assert seen == [100, 1]


async def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs() -> None:
    app, seen = body_app(100)
    for path in ("/echo", "/json"):
        response = await post(app, path, content=b"x" * 101)
        assert response.status_code == 413
        assert response.json() == {"success": False, "message": "request body over 100 bytes"}
    assert seen == []


async def test_a_streamed_body_over_the_limit_is_refused() -> None:
    app, seen = body_app(100)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 30

    for path in ("/echo", "/json"):
        response = await post(app, path, content=chunks())
        assert response.status_code == 413
        assert response.json() == {"success": False, "message": "request body over 100 bytes"}
    assert seen == []

    async def small() -> AsyncIterator[bytes]:
        yield b"x" * 50
        yield b"y" * 50

    assert (await post(app, "/echo", content=small())).json() == {"bytes": 100}


async def test_a_path_with_a_limit_of_its_own() -> None:
    """Uploads (`POST /api/files`) are streamed to disk: their limit is their own."""
    inner, seen = body_app(100)
    app = BodySizeLimit(inner.app, max_bytes=100, by_path={"/echo": 1000})

    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"x" * 100

    assert (await post(app, "/echo", content=b"x" * 1000)).json() == {"bytes": 1000}
    assert (await post(app, "/echo", content=chunks(10))).json() == {"bytes": 1000}
    for body in (b"x" * 1001, chunks(11)):
        refused = await post(app, "/echo", content=body)
        assert refused.status_code == 413
        assert refused.json()["message"] == "request body over 1000 bytes"
    assert (await post(app, "/json", content=b"x" * 101)).status_code == 413  # others: 100
    assert seen == [1000, 1000]


async def test_a_bare_asgi_app_gets_the_413_from_the_middleware() -> None:
    chunks_read: list[int] = []

    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            chunks_read.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x" * 10

    response = await post(BodySizeLimit(reader, max_bytes=25), "/", content=chunks())
    assert response.status_code == 413
    assert response.json()["message"] == "request body over 25 bytes"
    assert sum(chunks_read) <= 30  # stopped reading as soon as the body passed the limit


# --- page size --------------------------------------------------------------------------------


def test_page_limit_caps_and_refuses_nonsense() -> None:
    assert page_limit(10, 100) == 10
    assert page_limit(100, 100) == 100
    assert page_limit(5000, 100) == 100
    with pytest.raises(Exception) as caught:
        page_limit(0, 100)
    assert getattr(caught.value, "status_code", None) == 400
