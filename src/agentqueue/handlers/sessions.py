"""Conversation memory per owner and session (or conversation) id, kept in Redis so any worker
can continue it.

A session id is chosen by the client, so it names a conversation only within its owner's
memory: the same id sent by someone else (another user, or the same user id in another
organization) is another, new conversation. The owner comes from the job's record, which the API
writes from the authenticated caller, never from the job's data.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import redis.asyncio as redis

from agentqueue.engine.connection import transaction
from agentqueue.records.views import JobOwner

SESSION_TTL_S = 24 * 3600
# Memory of jobs without a record (added to Redis directly, by Node BullMQ say): no owner.
NO_OWNER = "-"


def new_session_id() -> str:
    return f"session_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


def owner_tag(owner: JobOwner | None) -> str:
    """A fixed-length name for an owner, safe in a Redis key whatever the ids contain."""
    if owner is None:
        return NO_OWNER
    raw = json.dumps([owner.user_id, owner.org_id])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class SessionStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "bull",
        kind: str = "session",
        max_messages: int = 100,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.kind = kind  # "session" (seed 000) or "conversation" (seed 004)
        self.max_messages = max_messages

    def key(self, owner: JobOwner | None, session_id: str) -> str:
        # The owner tag has a fixed form (hex or "-"), so distinct (owner, id) pairs never meet.
        return f"agentqueue:{self.prefix}:{self.kind}:{owner_tag(owner)}:{session_id}"

    def _marker(self, owner: JobOwner | None, session_id: str, job_id: str) -> str:
        # Hashed: ids may contain ':' and must not collide with each other or with a session.
        digest = hashlib.sha256(
            json.dumps([owner_tag(owner), session_id, job_id]).encode()
        ).hexdigest()[:32]
        return f"agentqueue:{self.prefix}:{self.kind}-appended:{digest}"

    async def history(self, owner: JobOwner | None, session_id: str) -> list[dict[str, Any]]:
        raw = await self.client.lrange(self.key(owner, session_id), -self.max_messages, -1)
        return [json.loads(item) for item in raw]

    async def append_once(
        self, owner: JobOwner | None, session_id: str, job_id: str, *messages: dict[str, Any]
    ) -> None:
        """Append a job's exchange to the session, once even if the job is retried after."""
        marker = self._marker(owner, session_id, job_id)
        if not await self.client.set(marker, "1", nx=True, ex=SESSION_TTL_S):
            return
        key = self.key(owner, session_id)
        async with transaction(self.client, key) as pipe:
            pipe.rpush(key, *(json.dumps(m) for m in messages))
            pipe.ltrim(key, -self.max_messages, -1)
            pipe.expire(key, SESSION_TTL_S)
            await pipe.execute()
