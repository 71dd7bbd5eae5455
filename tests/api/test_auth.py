"""Who may call the API: API keys, JWTs, protected mode, and who sees which job.

A small FastAPI app built here uses the real dependencies over a real Records database
(SQLite in a temporary directory), called in-process through httpx's ASGI transport from a
loopback or a remote client address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, Request

from agentqueue.api.auth import (
    Authenticator,
    Principal,
    Role,
    admin_principal,
    current_principal,
    require_jwt_or_admin_key,
)
from agentqueue.api.errors import install_error_handlers
from agentqueue.records.store import Records

SECRET = "test-secret-" + "0123456789abcdef" * 4
LOCAL = ("127.0.0.1", 50000)
REMOTE = ("10.1.2.3", 123)


def build_app(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.auth = auth

    def describe(principal: Principal) -> dict[str, Any]:
        return principal.model_dump()

    @app.get("/me")
    async def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
        return describe(principal)

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, Depends(admin_principal)]) -> dict[str, Any]:
        return describe(principal)

    @app.get("/v1/admin/queue/metrics")
    async def metrics(
        principal: Annotated[Principal, Depends(require_jwt_or_admin_key)],
    ) -> dict[str, Any]:
        return describe(principal)

    @app.get("/keys-only")
    async def keys_only(request: Request) -> dict[str, Any]:
        return describe(await request.app.state.auth.authenticate(request, allow_jwt=False))

    return app


@pytest.fixture
def auth(records: Records) -> Authenticator:
    # No cache: each request sees keys created just before it.
    return Authenticator(records, SECRET, keys_cache_s=0)


@pytest.fixture
def open_auth(records: Records) -> Authenticator:
    """No JWT secret: protected mode until the first API key."""
    return Authenticator(records, None, keys_cache_s=0)


@pytest.fixture
def call(auth: Authenticator) -> Callable[..., Any]:
    return caller(auth)


@pytest.fixture
def open_call(open_auth: Authenticator) -> Callable[..., Any]:
    return caller(open_auth)


def caller(auth: Authenticator) -> Callable[..., Any]:
    app = build_app(auth)

    async def _call(
        path: str = "/me", *, token: str | None = None, client: tuple[str, int] = LOCAL
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get(path, headers=headers)

    return _call


def make_jwt(secret: str = SECRET, **claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 3600)
    return jwt.encode(claims, secret, algorithm="HS256")


def assert_401(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["success"] is False
    for word in words:
        assert word in body["message"], body["message"]


# --- protected mode ---------------------------------------------------------------------------


async def test_without_credentials_loopback_is_served_as_the_local_admin(
    open_call: Any,
) -> None:
    call = open_call
    response = await call()
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "local",
        "org_id": None,
        "role": "admin",
        "via": "local",
        "key_id": None,
    }
    assert (await call(client=("::1", 40000))).status_code == 200
    assert (await call(client=("127.8.9.10", 1))).status_code == 200


async def test_without_keys_other_addresses_get_401_saying_how_to_get_a_key(
    open_call: Any,
) -> None:
    call = open_call
    assert_401(await call(client=REMOTE), "agentqueue keys create")
    assert_401(await call(client=("192.168.1.20", 5)), "protected mode")


async def test_once_a_key_exists_every_request_needs_one(
    open_call: Any, records: Records
) -> None:
    call = open_call
    assert (await call()).status_code == 200
    key, view = await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)

    assert_401(await call(), "API key is required", "agentqueue keys create")
    assert_401(await call(client=REMOTE))

    for client in (LOCAL, REMOTE):
        response = await call(token=key, client=client)
        assert response.status_code == 200
        assert response.json() == {
            "user_id": "alice",
            "org_id": "acme",
            "role": "user",
            "via": "api_key",
            "key_id": view.id,
        }


async def test_a_jwt_secret_alone_ends_protected_mode(call: Any, records: Records) -> None:
    # JWT_SECRET set, no API key yet: a credential is configured, so loopback needs a token too.
    assert not await records.has_api_keys()
    assert_401(await call(), "an API key or a JWT is required", "agentqueue keys create")
    assert_401(await call(client=REMOTE), "an API key or a JWT is required")
    assert (await call(token=make_jwt(sub="bob"))).status_code == 200


async def test_whether_keys_exist_is_cached_for_a_while(records: Records) -> None:
    now = [1000.0]
    auth = Authenticator(records, None, keys_cache_s=2.0, clock=lambda: now[0])
    app = build_app(auth)
    transport = httpx.ASGITransport(app=app, client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/me")).status_code == 200
        await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)
        now[0] += 1.0
        assert (await http.get("/me")).status_code == 200  # still the cached answer
        now[0] += 1.5
        assert (await http.get("/me")).status_code == 401


async def test_requests_finding_the_answer_stale_at_once_ask_the_database_once(
        records: Records, monkeypatch: pytest.MonkeyPatch) -> None:
    # A thousand sockets connecting together took every database connection (503s) asking.
    asked = 0
    real = records.has_api_keys

    async def counted() -> bool:
        nonlocal asked
        asked += 1
        return await real()

    monkeypatch.setattr(records, "has_api_keys", counted)
    app = build_app(Authenticator(records, None, keys_cache_s=2.0))
    transport = httpx.ASGITransport(app=app, client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answers = await asyncio.gather(*(http.get("/me") for _ in range(50)))
    assert [a.status_code for a in answers] == [200] * 50
    assert asked == 1


# --- API keys ---------------------------------------------------------------------------------


async def test_revoked_and_unknown_keys_get_401(call: Any, records: Records) -> None:
    key, view = await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)
    assert (await call(token=key)).status_code == 200
    assert await records.revoke_api_key(str(view.id))
    assert_401(await call(token=key), "invalid or revoked API key")
    assert_401(await call(token="aq_" + "x" * 40), "invalid or revoked API key")


async def test_admin_key_is_an_admin(call: Any, records: Records) -> None:
    user_key, _ = await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)
    admin_key, _ = await records.create_api_key(user_id="root", org_id="ops", is_admin=True)

    response = await call("/admin", token=admin_key)
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert (await call("/v1/admin/queue/metrics", token=admin_key)).status_code == 200

    forbidden = await call("/admin", token=user_key)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"success": False, "message": "admin access required"}
    assert (await call("/v1/admin/queue/metrics", token=user_key)).status_code == 403


async def test_malformed_authorization_headers(auth: Authenticator) -> None:
    app = build_app(auth)
    transport = httpx.ASGITransport(app=app, client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for header in ("Basic dXNlcjpwYXNz", "Bearer", "Token abc"):
            assert_401(await http.get("/me", headers={"Authorization": header}), "Bearer <token>")
        response = await http.get("/me", headers={"Authorization": "Bearer not-a-token"})
        assert_401(response, "neither a valid API key", "nor a JWT")


@pytest.mark.parametrize("token", ["ak_123", "sk-live-abcdef", "aqkey123", "a.b", "x" * 60])
async def test_a_mistyped_key_is_not_answered_as_a_jwt_problem(
    open_call: Any, token: str
) -> None:
    # No JWT secret: a token that is neither an API key nor shaped like a JWT is simply invalid.
    response = await open_call(token=token)
    assert_401(response, "neither a valid API key (keys start with 'aq_') nor a JWT")
    assert "JWT_SECRET" not in response.json()["message"]


# --- JWT --------------------------------------------------------------------------------------


async def test_a_valid_jwt_names_user_org_and_role(call: Any) -> None:
    response = await call(token=make_jwt(sub="bob", org="acme", role="org_admin"))
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "bob",
        "org_id": "acme",
        "role": "org_admin",
        "via": "jwt",
        "key_id": None,
    }


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({}, "user"),
        ({"role": "user"}, "user"),
        ({"role": "admin"}, "admin"),
        ({"role": "ADMIN"}, "admin"),
        ({"role": "org_admin"}, "org_admin"),
    ],
)
async def test_jwt_role_mapping(call: Any, claims: dict[str, Any], role: str) -> None:
    response = await call(token=make_jwt(sub="bob", **claims))
    assert response.status_code == 200
    assert response.json()["role"] == role
    assert response.json()["org_id"] is None


async def test_jwt_with_an_unknown_role_is_refused(call: Any) -> None:
    assert_401(await call(token=make_jwt(sub="bob", role="superuser")), "role")


async def test_expired_jwt(call: Any) -> None:
    token = make_jwt(sub="bob", exp=int(time.time()) - 3600)
    assert_401(await call(token=token), "JWT has expired")


async def test_jwt_signed_with_another_secret(call: Any) -> None:
    token = make_jwt("another-secret-that-is-also-long-enough-0123456789", sub="bob")
    assert_401(await call(token=token), "signature is invalid")


async def test_jwt_without_sub(call: Any) -> None:
    assert_401(await call(token=make_jwt(org="acme")), "missing the 'sub' claim")


async def test_jwt_with_another_algorithm(call: Any) -> None:
    token = jwt.encode({"sub": "bob"}, SECRET, algorithm="HS512")
    assert_401(await call(token=token), "HS256")


async def test_jwt_without_a_configured_secret(records: Records) -> None:
    app = build_app(Authenticator(records, None, keys_cache_s=0))
    transport = httpx.ASGITransport(app=app, client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {make_jwt(sub='b')}"})
    assert_401(response, "looks like a JWT", "JWT is not configured (set JWT_SECRET)")


async def test_admin_queue_endpoints_take_an_admin_jwt(call: Any) -> None:
    path = "/v1/admin/queue/metrics"
    admin = await call(path, token=make_jwt(sub="ops", role="admin"), client=REMOTE)
    assert admin.status_code == 200
    assert admin.json()["via"] == "jwt"

    user = await call(path, token=make_jwt(sub="bob", role="user"))
    assert user.status_code == 403
    assert "JWT with role 'admin'" in user.json()["message"]
    org_admin = await call(path, token=make_jwt(sub="bob", org="acme", role="org_admin"))
    assert org_admin.status_code == 403

    # JWT_SECRET is set: no protected mode, not even from loopback
    assert_401(await call(path))
    assert_401(await call(path, client=REMOTE))


async def test_an_endpoint_can_refuse_jwts(call: Any, records: Records) -> None:
    assert_401(await call("/keys-only", token=make_jwt(sub="bob")), "takes an API key")
    key, _ = await records.create_api_key(user_id="alice", org_id="acme", is_admin=False)
    assert (await call("/keys-only", token=key)).status_code == 200


# --- who sees which job -----------------------------------------------------------------------


def principal(role: Role, user: str = "alice", org: str | None = "acme") -> Principal:
    return Principal(user_id=user, org_id=org, role=role, via="jwt")


@pytest.mark.parametrize(
    ("who", "owner", "visible"),
    [
        # a user: own jobs only, and not those filed under another organization
        (principal("user"), ("alice", "acme"), True),
        (principal("user"), ("alice", None), False),
        (principal("user"), ("alice", "globex"), False),
        (principal("user"), ("bob", "acme"), False),
        (principal("user"), ("bob", None), False),
        # no organization (a JWT without `org`): only jobs without one, never every org's
        (principal("user", org=None), ("alice", None), True),
        (principal("user", org=None), ("alice", "acme"), False),
        (principal("user", org=None), ("bob", None), False),
        # an org admin: the whole organization, plus their own
        (principal("org_admin"), ("bob", "acme"), True),
        (principal("org_admin"), ("alice", "acme"), True),
        (principal("org_admin"), ("alice", None), False),
        (principal("org_admin", org=None), ("alice", None), True),
        (principal("org_admin", org=None), ("alice", "acme"), False),
        (principal("org_admin"), ("bob", "globex"), False),
        (principal("org_admin"), ("bob", None), False),
        (principal("org_admin", org=None), ("bob", None), False),
        # an admin: everything
        (principal("admin"), ("bob", "globex"), True),
        (principal("admin", org=None), ("bob", None), True),
        (Principal(user_id="local", role="admin", via="local"), ("bob", "globex"), True),
    ],
)
def test_can_see(who: Principal, owner: tuple[str, str | None], visible: bool) -> None:
    assert who.can_see(*owner) is visible


def test_principal_flags() -> None:
    assert principal("admin").is_admin
    assert not principal("org_admin").is_admin
    assert principal("org_admin").is_org_admin
    assert not principal("user").is_admin
