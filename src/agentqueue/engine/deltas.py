"""Streamed text deltas on a Redis stream of their own, beside BullMQ's events stream.

A job that streams a model's answer writes its progress coalesced (one write per ~50 ms: a
progress write is a Lua call and an event for every follower). Followers who show the answer
as it arrives need every piece, at once: each delta is XADDed to `<prefix>:<queue>:deltas`
(one stream per queue, so one blocking read serves every job of it), trimmed to about
`MAX_DELTAS` entries. Kept apart from the events stream so a busy stream of tokens never
pushes BullMQ's own events (which Node `QueueEvents` and job waits read) out of its window.

An entry's fields: `jobId`, `attempt` (the text restarts with each attempt), `offset` (where the
delta starts in the attempt's text, so a follower can tell a gap) and `text`.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

MAX_DELTAS = 20_000


def deltas_key(prefix: str, queue: str) -> str:
    return f"{prefix}:{queue}:deltas"


def events_key(prefix: str, queue: str) -> str:
    """BullMQ's events stream of a queue."""
    return f"{prefix}:{queue}:events"


@dataclass(frozen=True)
class Delta:
    job_id: str
    attempt: int
    offset: int
    text: str

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Delta | None:
        try:
            return cls(fields["jobId"], int(fields.get("attempt", 1)),
                       int(fields.get("offset", 0)), fields.get("text", ""))
        except (KeyError, ValueError):
            return None  # not one of ours


class DeltaWriter:
    """Writes one job attempt's deltas as they arrive (one XADD each, no waiting)."""

    def __init__(self, client: redis.Redis, prefix: str, queue: str, job_id: str,
                 attempt: int) -> None:
        self.client = client
        self.key = deltas_key(prefix, queue)
        self.job_id = job_id
        self.attempt = attempt

    async def write(self, offset: int, text: str) -> None:
        await self.client.xadd(
            self.key, {"jobId": self.job_id, "attempt": self.attempt, "offset": offset,
                       "text": text},
            maxlen=MAX_DELTAS, approximate=True)
