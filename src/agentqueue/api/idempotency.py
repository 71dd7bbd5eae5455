"""`Idempotency-Key` on every create endpoint: a request sent twice creates one job.

A client that is not sure its `POST` went through (a timeout, a dropped connection) sends it
again with the same `Idempotency-Key` header. The first request with a key claims it in Redis
(`SET NX`, so of two concurrent requests exactly one creates the job); its 2xx answer is stored
under the key for `IDEMPOTENCY_TTL_S` (24 hours), and every later request with that key from the
same caller gets that answer again, with status 200 instead of 201 and the header
`Idempotent-Replayed: true`. Keys are scoped per caller (user and organization): another user's
same key is another job.

- A request with a key whose first request had a different body (or went to another route)
  is refused with 422: the key names one request, not one route.
- A request arriving while the first is still being answered waits for it (up to
  `WAIT_FOR_FIRST_S`) and gets its answer; after that, 409.
- A first request that fails (4xx, 5xx) leaves the key free: the retry runs anew. A process that
  dies mid-request leaves its claim for `CLAIM_TTL_S`, then the key is free again.

Why not BullMQ's deduplication (`dedup_key` in the Python API): it is per queue, not per
caller; it holds only while the job is in Redis (or for its ttl), not a stated time; it answers
the held job whatever the new body is, where a mismatch must be refused; and a batch route
creates jobs the deduplication id cannot name. So this is a layer of its own at the edge, in
front of the submission path, which stays untouched.

Use it as a route dependency (`dependencies=[IDEMPOTENT]`) and install `IdempotencyMiddleware`
(which stores the answer) and the replay handler with `install_idempotency(app)`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentqueue.api.access import Caller
from agentqueue.api.errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_TTL_S = 24 * 3600  # how long a key keeps its answer
CLAIM_TTL_S = 60  # how long a claim outlives a process that died answering it
WAIT_FOR_FIRST_S = 10.0  # how long a repeat waits for the first request's answer
_POLL_S = 0.02
MAX_KEY_LENGTH = 255
_STATE = "agentqueue.idempotency"  # where the claim waits in the request's state

# Store the answer only if the claim is still ours (a claim that expired and was taken again
# belongs to the request that took it).
_STORE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, held = pcall(cjson.decode, current)
if not ok or held['token'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, held = pcall(cjson.decode, current)
if not ok or held['token'] ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


class IdempotentReplay(Exception):
    """The stored answer of the key's first request, to send again."""

    def __init__(self, body: str) -> None:
        super().__init__("idempotent replay")
        self.body = body


def redis_key(prefix: str, user_id: str, org_id: str | None, key: str) -> str:
    # Hashed: a key is the client's text, and the caller's identity needs no spelling out.
    scope = hashlib.sha256(json.dumps([user_id, org_id, key]).encode()).hexdigest()
    return f"agentqueue:{prefix}:idempotency:{scope}"


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request a key stands for: route and body (as JSON, so key order and spacing do not
    count; as bytes when it is not JSON)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ApiError(400, f"{HEADER}: 1 to {MAX_KEY_LENGTH} printable ASCII characters")


async def idempotency_claim(
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[
        str | None, Header(alias=HEADER, description=(
            "Send the same key again to get the first request's answer (200) instead of a "
            "second job; kept 24 hours, per caller"))] = None,
) -> None:
    """Route dependency: claim the request's key, or answer the key's first answer again."""
    if idempotency_key is None:
        return
    _check_key(idempotency_key)
    services = request.app.state.services
    client = services.client
    key = redis_key(services.settings.queue_prefix, caller.user_id, caller.org_id,
                    idempotency_key)
    wanted = fingerprint(request.method, request.url.path, await request.body())
    token = secrets.token_hex(8)
    claim = json.dumps({"token": token, "fingerprint": wanted, "state": "pending"})
    deadline = time.monotonic() + WAIT_FOR_FIRST_S
    while True:
        if await client.set(key, claim, nx=True, ex=CLAIM_TTL_S):
            request.scope.setdefault("state", {})[_STATE] = (key, token, wanted)
            return
        raw = await client.get(key)
        if raw is None:
            continue  # the first request failed, or its claim ran out: claim it again
        held = json.loads(raw)
        if held.get("fingerprint") != wanted:
            raise ApiError(422, f"{HEADER} {idempotency_key!r} was already used with a "
                                "different request (another body or route); use a new key "
                                "for a new request")
        if held.get("state") == "done":
            raise IdempotentReplay(held["body"])
        if time.monotonic() >= deadline:
            raise ApiError(409, f"a request with {HEADER} {idempotency_key!r} is still being "
                                "answered; try again shortly")
        await asyncio.sleep(_POLL_S)  # the first request is being answered


IDEMPOTENT = Depends(idempotency_claim)


class IdempotencyMiddleware:
    """Pure ASGI: stores the 2xx answer of a request that claimed a key (or frees the key when
    the request failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 0
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if _STATE in state:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            claimed = state.pop(_STATE, None)
            if claimed is not None:
                await _settle(scope, claimed, status, b"".join(chunks))


async def _settle(scope: Scope, claimed: tuple[str, str, str], status: int, body: bytes) -> None:
    key, token, wanted = claimed
    client = scope["app"].state.services.client
    if 200 <= status < 300:
        answer = json.dumps({"token": token, "fingerprint": wanted, "state": "done",
                             "body": body.decode()})
        await client.eval(_STORE, 1, key, token, answer, IDEMPOTENCY_TTL_S)
    else:
        await client.eval(_RELEASE, 1, key, token)


def install_idempotency(app: FastAPI) -> None:
    app.add_middleware(IdempotencyMiddleware)

    @app.exception_handler(IdempotentReplay)
    async def _replay(_: Request, exc: IdempotentReplay) -> Response:
        return Response(exc.body, status_code=200, media_type="application/json",
                        headers={REPLAYED_HEADER: "true"})
