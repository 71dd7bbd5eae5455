"""Who is calling: API keys, JWT bearer tokens, and protected mode for a laptop.

Every request names its caller with `Authorization: Bearer <token>`:

- a token starting with `aq_` is an API key (`agentqueue keys create --user U --org O`); only
  its hash is stored, and a revoked key stops working at once (within a second when another
  process, such as `agentqueue keys revoke`, revoked it);
- any other token is a JWT signed with HS256 and the `JWT_SECRET` setting, with claims `sub`
  (the user), `org` (optional) and `role` (`user`, `org_admin` or `admin`; default `user`).

Protected mode, as Redis does it: while no credential is configured (no API key exists and
`JWT_SECRET` is unset), a request without a token from a loopback address is served as the
local user (an admin), so the seeds' curl examples work on a laptop; a request from any other
address gets 401. As soon as a key exists or `JWT_SECRET` is set, every request needs a token.
(Behind a reverse proxy on the same host, let uvicorn resolve the real client from
`X-Forwarded-For`, which it does by default for a proxy on 127.0.0.1.)

The app keeps one `Authenticator` at `app.state.auth`; routes depend on `current_principal`,
`admin_principal`, `require_jwt_or_admin_key` or `optional_principal`. When
`app.state.rate_limiter` is set (see `agentqueue.api.limits.RateLimiter`), those dependencies
also count the request against the caller's budget; when `app.state.auth_throttle` is set (see
`agentqueue.api.auth_throttle`), failed authentications are throttled per client address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict

from agentqueue.api.auth_throttle import AuthFailureThrottle, client_address

if TYPE_CHECKING:
    from agentqueue.records.store import Records

Role = Literal["user", "org_admin", "admin"]
ROLES: tuple[Role, ...] = ("user", "org_admin", "admin")
API_KEY_PREFIX = "aq_"
LOCAL_USER = "local"

_CREATE_HINT = (
    "create one with `agentqueue keys create --user USER --org ORG` "
    "and send it as 'Authorization: Bearer <key>'"
)
_BEARER = {"WWW-Authenticate": "Bearer"}
# A JWT's compact form: three base64url parts (header, claims, signature) joined by dots.
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_NOT_A_TOKEN = (
    f"invalid bearer token: neither a valid API key (keys start with '{API_KEY_PREFIX}') "
    "nor a JWT"
)


class Principal(BaseModel):
    """The caller of a request, as every route sees it."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    org_id: str | None = None
    role: Role = "user"
    via: Literal["api_key", "jwt", "local"]
    key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        """Admins see and touch every job."""
        return self.role == "admin"

    @property
    def is_org_admin(self) -> bool:
        return self.role == "org_admin"

    @property
    def rate_limit_id(self) -> str:
        """The budget this caller's requests count against: its key, its JWT subject, or local."""
        if self.via == "api_key" and self.key_id is not None:
            return f"key:{self.key_id}"
        if self.via == "jwt":
            # The same subject in two organizations is two callers with two budgets.
            return f"jwt:{json.dumps([self.org_id, self.user_id])}"
        return LOCAL_USER

    def can_see(self, owner_user_id: str, owner_org_id: str | None) -> bool:
        """Whether this caller may see (and so cancel, retry, count) a job with this owner.

        - admin: every job;
        - org_admin: every job of their organization, and their own;
        - user: their own jobs: same user id and same organization. A principal without an
          organization matches only jobs without one, and the reverse (the same user id in two
          organizations, or a JWT without `org`, names different people).
        A job without an owner (`NO_OWNER`: added by a plain BullMQ producer) is every admin's
        and nobody else's.

        Routes answer 404, never 403, for a job this returns False for, so a job id says nothing
        about jobs of others.
        """
        if self.is_admin:
            return True
        if not owner_user_id:
            return False  # owner-less: no caller has an empty user id, but say so outright
        if self.is_org_admin and self.org_id is not None and owner_org_id == self.org_id:
            return True
        return owner_user_id == self.user_id and owner_org_id == self.org_id


def unauthorized(message: str) -> HTTPException:
    """A 401 with `WWW-Authenticate: Bearer`, rendered `{"success": false, "message": ...}`."""
    return HTTPException(status_code=401, detail=message, headers=dict(_BEARER))


def forbidden(message: str) -> HTTPException:
    return HTTPException(status_code=403, detail=message)


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback (::ffff:127.0.0.1). Unknown: not loopback."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class Authenticator:
    """Turns a request's `Authorization` header into a `Principal`, or raises 401.

    `keys_cache_s`: how long the answer to "does any API key exist?" is reused, so protected
    mode costs no query per request. The first key created therefore takes effect for local
    requests within that time; remote requests are refused throughout.
    `jwt_leeway_s`: clock skew tolerated on `exp`/`nbf`/`iat`.
    """

    def __init__(
        self,
        records: Records,
        jwt_secret: str | None,
        *,
        keys_cache_s: float = 2.0,
        jwt_leeway_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self.jwt_secret = jwt_secret or None
        self.keys_cache_s = keys_cache_s
        self.jwt_leeway_s = jwt_leeway_s
        self._clock = clock
        self._has_keys: bool | None = None
        self._has_keys_until = 0.0
        self._asking: asyncio.Future[bool] | None = None

    async def authenticate(self, request: Request, *, allow_jwt: bool = True) -> Principal:
        header = request.headers.get("authorization", "").strip()
        if not header:
            return await self._protected_mode(request)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        if token.startswith(API_KEY_PREFIX):
            return await self._api_key(token)
        if not allow_jwt:
            raise unauthorized(
                f"this endpoint takes an API key ('{API_KEY_PREFIX}...'); {_CREATE_HINT}"
            )
        return self._jwt(token)

    async def is_protected_mode(self) -> bool:
        """Whether no credential is configured yet: no JWT secret and no API key."""
        return self.jwt_secret is None and not await self.has_api_keys()

    async def has_api_keys(self) -> bool:
        """Whether any API key exists, asked at most once per `keys_cache_s`; requests that
        find the answer stale meanwhile share one question (a thousand sockets connecting at
        once must not take every database connection)."""
        now = self._clock()
        if self._has_keys is None or now >= self._has_keys_until:
            if self._asking is None or self._asking.done():
                self._asking = asyncio.ensure_future(self._ask(now))
            return await asyncio.shield(self._asking)
        return self._has_keys

    async def _ask(self, now: float) -> bool:
        answer = await self.records.has_api_keys()
        self._has_keys, self._has_keys_until = answer, now + self.keys_cache_s
        return answer

    def forget_cached_state(self) -> None:
        """Ask the database again on the next request (after creating or revoking keys here)."""
        self._has_keys = None

    async def local_principal(self, request: Request) -> Principal | None:
        """The local user, for a request from loopback while in protected mode; else None."""
        host = request.client.host if request.client else None
        if is_loopback(host) and await self.is_protected_mode():
            return Principal(user_id=LOCAL_USER, org_id=None, role="admin", via="local")
        return None

    async def _protected_mode(self, request: Request) -> Principal:
        if await self.has_api_keys():
            raise unauthorized(f"an API key is required; {_CREATE_HINT}")
        if self.jwt_secret is not None:
            # A secret configured is a credential configured: protected mode is over.
            raise unauthorized(f"an API key or a JWT is required; {_CREATE_HINT}")
        local = await self.local_principal(request)
        if local is not None:
            return local
        raise unauthorized(
            "protected mode: no API key exists yet, so only requests from this machine "
            f"(loopback) are served without one; {_CREATE_HINT}"
        )

    async def _api_key(self, token: str) -> Principal:
        key = await self.records.find_api_key(token)
        if key is None:
            raise unauthorized("invalid or revoked API key")
        return Principal(
            user_id=key.user_id,
            org_id=key.org_id,
            role="admin" if key.is_admin else "user",
            via="api_key",
            key_id=key.id,
        )

    def _jwt(self, token: str) -> Principal:
        if not _JWT_SHAPE.match(token):
            raise unauthorized(_NOT_A_TOKEN)
        if not self.jwt_secret:
            raise unauthorized("this looks like a JWT, but JWT is not configured (set JWT_SECRET)")
        # PyJWT loads much of `cryptography` (~40 ms): imported by the first JWT, not at start.
        import jwt

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                options={"require": ["sub"]},
                leeway=self.jwt_leeway_s,
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("JWT has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"JWT is missing the '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise unauthorized("JWT signature is invalid (signed with another secret?)") from None
        except jwt.InvalidAlgorithmError:
            raise unauthorized("JWT must be signed with HS256") from None
        except jwt.DecodeError:
            raise unauthorized(_NOT_A_TOKEN) from None
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"invalid JWT: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise unauthorized("JWT 'sub' claim must be a non-empty string")
        org = claims.get("org")
        if org is not None and (isinstance(org, bool) or not isinstance(org, str | int)):
            raise unauthorized("JWT 'org' claim must be a string")
        role = claims.get("role", "user")
        role = role.lower() if isinstance(role, str) else role
        if role not in ROLES:
            raise unauthorized(f"JWT 'role' claim must be one of {', '.join(ROLES)}")
        return Principal(
            user_id=sub,
            org_id=str(org) if org is not None and org != "" else None,
            role=role,
            via="jwt",
        )


def _authenticator(request: Request) -> Authenticator:
    auth = getattr(request.app.state, "auth", None)
    if not isinstance(auth, Authenticator):
        raise RuntimeError("app.state.auth is not set: the app must install an Authenticator")
    return auth


async def _limit(request: Request, principal: Principal) -> Principal:
    request.state.principal = principal
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.check(principal)
    return principal


async def _authenticate(request: Request) -> Principal:
    """The caller, with failed authentications throttled per client address."""
    auth = _authenticator(request)
    throttle = getattr(request.app.state, "auth_throttle", None)
    if not isinstance(throttle, AuthFailureThrottle) or "authorization" not in request.headers:
        return await auth.authenticate(request)
    address = client_address(request)
    await throttle.check(address)
    try:
        return await auth.authenticate(request)
    except HTTPException as exc:
        if exc.status_code == 401:
            await throttle.failed(address)
        raise


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller (API key, JWT or local), or 401; 429 over its rate or
    after too many failed authentications from its address."""
    principal = await _authenticate(request)
    return await _limit(request, principal)


async def optional_principal(request: Request) -> Principal | None:
    """FastAPI dependency for public endpoints that tell more to a known caller.

    Without credentials: the local user in protected mode, else None (never a 401). With
    credentials: as `current_principal`, so a bad token is a 401 (and counts as a failure).
    """
    if "authorization" not in request.headers:
        return await _authenticator(request).local_principal(request)
    return await current_principal(request)


async def admin_principal(request: Request) -> Principal:
    """FastAPI dependency: an admin caller; 401 without credentials, 403 for non-admins."""
    principal = await current_principal(request)
    if not principal.is_admin:
        raise forbidden("admin access required")
    return principal


async def require_jwt_or_admin_key(request: Request) -> Principal:
    """FastAPI dependency for seed 003's admin queue endpoints ("JWT Required").

    Accepts a JWT with role `admin`, an admin API key, or the local user in protected mode;
    401 without valid credentials, 403 for valid credentials that are not an admin's.
    """
    principal = await current_principal(request)
    if not principal.is_admin:
        raise forbidden("admin endpoints need a JWT with role 'admin' or an admin API key")
    return principal
