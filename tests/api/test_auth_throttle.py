"""Failed authentication is throttled per client address, counted in a real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
import redis.asyncio as redis
from fastapi import Depends, FastAPI

from agentqueue.api.auth import Authenticator, Principal, current_principal
from agentqueue.api.auth_throttle import AuthFailureThrottle
from agentqueue.api.errors import install_error_handlers
from agentqueue.records.store import Records
from tests.support.waiting import eventually

ATTACKER = ("10.9.8.7", 4000)
NEIGHBOUR = ("10.9.8.8", 4000)
LOCAL = ("127.0.0.1", 5000)


def throttle(client: redis.Redis, prefix: str, **options: Any) -> AuthFailureThrottle:
    options.setdefault("limit", 3)
    return AuthFailureThrottle(client, key_prefix=f"agentqueue:{prefix}:authfail", **options)


@pytest.fixture
def build(records: Records) -> Callable[[AuthFailureThrottle], Callable[..., Any]]:
    def make(limiter: AuthFailureThrottle) -> Callable[..., Any]:
        app = FastAPI()
        install_error_handlers(app)
        app.state.auth = Authenticator(records, None, keys_cache_s=0)
        app.state.auth_throttle = limiter

        @app.get("/me")
        async def me(who: Annotated[Principal, Depends(current_principal)]) -> dict[str, str]:
            return {"user": who.user_id}

        async def call(token: str | None, client: tuple[str, int] = ATTACKER) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await http.get("/me", headers=headers)

        return call

    return make


async def test_wrong_keys_in_a_row_end_in_429_with_retry_after(
    client: redis.Redis, prefix: str, records: Records, build: Any
) -> None:
    call = build(throttle(client, prefix, limit=3, window_s=60))
    key, _ = await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)
    codes = [(await call(f"aq_wrong{i}")).status_code for i in range(3)]
    assert codes == [401, 401, 401]

    refused = await call("aq_wrong-again")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "too many failed authentication attempts" in refused.json()["message"]
    # Blocked, the address learns nothing more: even a right key is not checked.
    assert (await call(key)).status_code == 429
    # Other addresses are unaffected, failures are counted per address.
    assert (await call(key, client=NEIGHBOUR)).status_code == 200
    assert (await call("garbage", client=NEIGHBOUR)).status_code == 401


async def test_the_count_is_shared_by_every_api_process(
    client: redis.Redis, prefix: str, build: Any
) -> None:
    first = build(throttle(client, prefix, limit=2))
    second = build(throttle(client, prefix, limit=2))
    assert (await first("aq_a")).status_code == 401
    assert (await second("aq_b")).status_code == 401
    assert (await first("aq_c")).status_code == 429


async def test_requests_without_credentials_are_not_throttled(
    client: redis.Redis, prefix: str, build: Any
) -> None:
    call = build(throttle(client, prefix, limit=1))
    assert (await call("aq_wrong", client=LOCAL)).status_code == 401
    assert (await call("aq_wrong", client=LOCAL)).status_code == 429
    # Protected mode (no credential configured) still serves loopback without a token.
    assert (await call(None, client=LOCAL)).status_code == 200


async def test_the_address_may_try_again_when_the_window_ends(
    client: redis.Redis, prefix: str, records: Records, build: Any
) -> None:
    call = build(throttle(client, prefix, limit=1, window_s=0.3))
    key, _ = await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)
    assert (await call("aq_wrong")).status_code == 401
    assert (await call(key)).status_code == 429

    async def served() -> bool:
        return (await call(key)).status_code == 200

    await eventually(served, timeout=10, what="the throttle window to end")


def test_throttle_settings_are_checked(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="limit"):
        AuthFailureThrottle(client, limit=0)
    with pytest.raises(ValueError, match="window_s"):
        AuthFailureThrottle(client, limit=1, window_s=0)
