"""Conversation memory per session (or conversation) id, kept in Redis so any worker can
continue it."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis.asyncio as redis

SESSION_TTL_S = 24 * 3600


def new_session_id() -> str:
    return f"session_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


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

    def _key(self, session_id: str) -> str:
        return f"agentqueue:{self.prefix}:{self.kind}:{session_id}"

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        raw = await self.client.lrange(self._key(session_id), -self.max_messages, -1)
        return [json.loads(item) for item in raw]

    async def append_once(self, session_id: str, job_id: str, *messages: dict[str, Any]) -> None:
        """Append a job's exchange to the session, once even if the job is retried after."""
        marker = f"{self._key(session_id)}:job:{job_id}"
        if not await self.client.set(marker, "1", nx=True, ex=SESSION_TTL_S):
            return
        key = self._key(session_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *(json.dumps(m) for m in messages))
            pipe.ltrim(key, -self.max_messages, -1)
            pipe.expire(key, SESSION_TTL_S)
            await pipe.execute()
