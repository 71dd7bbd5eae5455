"""Durable steps of one job: what each finished step returned, kept across its attempts.

A job's run is a sequence of steps (a provider call, a tool call, a handler's `ctx.step`). Each
finished step is written to the job's step log, a Redis hash beside the job
(`agentqueue:<prefix>:<queue>:steps:<job id>`, one field per step). A later run of the same job
(a retry after an error or a timeout, the re-run after its worker died, a run resumed after an
approval) replays each step it finds there instead of doing it again, and carries on from the
first step that has no entry: no paid call is bought twice and no side effect happens twice.

Steps are named by the code that runs them; a name used again in one run is numbered (`fetch`,
`fetch#2`, …), so a loop replays call for call. Each entry keeps a fingerprint of what the step
was asked (a provider request's digest, a tool's arguments): a step asked something else this
time is done again, not replayed.

Some results are taken on trust only once the run goes on with them (`accepted=False`): a
provider's reply may be rejected by the code that asked for it (JSON that does not fit the
schema, an empty answer), and replaying it would fail every retry the same way. Such a step is
written when the run's next step begins; the last reply of a failed run is never kept.

Why Redis rather than the SQL record: a step is written on the worker's hot path, as often as
a provider is called, and read only by the job's own later runs; Redis already holds the job
(and with AOF, as durably). The log expires `STEPS_TTL_S` after its last write; the job's APIs
show it (`GET /api/jobs/{id}/steps`) while it is kept.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis

T = TypeVar("T")

STEPS_TTL_S = 7 * 24 * 3600
# Prefixes of the steps agentqueue names itself (a handler's `ctx.step` may not use them).
RESERVED_PREFIXES = ("provider:", "tool:")


def steps_key(prefix: str, queue: str, job_id: str) -> str:
    return f"agentqueue:{prefix}:{queue}:steps:{job_id}"


def fingerprint(value: Any) -> str:
    """A short digest of what a step was asked (JSON, keys sorted)."""
    raw = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class StepLog:
    """The step log of one job, as one run of it reads and writes it."""

    def __init__(self, client: redis.Redis, *, prefix: str, queue: str, job_id: str,
                 attempt: int) -> None:
        self.client = client
        self.key = steps_key(prefix, queue, job_id)
        self.attempt = attempt
        self._seen: Counter[str] = Counter()
        self._stored: dict[str, dict[str, Any]] | None = None
        self._unaccepted: list[tuple[str, str]] = []
        self.replayed = 0  # steps this run took from the log

    def name(self, base: str) -> str:
        """The next name for a step called `base` in this run: `base`, `base#2`, …"""
        self._seen[base] += 1
        count = self._seen[base]
        return base if count == 1 else f"{base}#{count}"

    async def _entries(self) -> dict[str, dict[str, Any]]:
        if self._stored is None:  # read once per run: nothing else writes it meanwhile
            raw = await self.client.hgetall(self.key)
            self._stored = {str(k): json.loads(v) for k, v in raw.items()}
        return self._stored

    async def find(self, name: str, asked: str | None) -> dict[str, Any] | None:
        """The finished step `name`, if it was asked the same (`asked`: its fingerprint)."""
        entry = (await self._entries()).get(name)
        if entry is None or entry.get("fingerprint") != asked:
            return None
        self.replayed += 1
        return entry

    async def record(self, name: str, result: Any, *, kind: str, asked: str | None,
                     accepted: bool = True, **extra: Any) -> None:
        """Write step `name`'s result (JSON); with `accepted=False`, once the run goes on."""
        entries = await self._entries()
        entry = {"name": name, "seq": len(entries) + len(self._unaccepted) + 1, "kind": kind,
                 "fingerprint": asked, "result": result, "attempt": self.attempt,
                 "at": round(time.time() * 1000), **extra}
        value = json.dumps(entry)
        if not accepted:
            self._unaccepted.append((name, value))
            return
        await self._write([(name, value)])

    async def accept(self) -> None:
        """The run goes on: the results it held back are taken on trust now."""
        if self._unaccepted:
            pending, self._unaccepted = self._unaccepted, []
            await self._write(pending)

    async def _write(self, items: list[tuple[str, str]]) -> None:
        entries = await self._entries()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, mapping=dict(items))
            pipe.expire(self.key, STEPS_TTL_S)
            await pipe.execute()
        for name, value in items:
            entries[name] = json.loads(value)

    async def run(self, base: str, fn: Callable[..., Awaitable[T]], *args: Any,
                  kind: str = "step") -> T:
        """`await fn(*args)` as step `base`: replayed from the log if it finished before."""
        name = self.name(base)
        asked = fingerprint(args)
        await self.accept()
        found = await self.find(name, asked)
        if found is not None:
            result: T = found["result"]
            return result
        result = await fn(*args)
        try:
            json.dumps(result)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"step {name!r} returned a value JSON cannot hold: {exc}") from exc
        await self.record(name, result, kind=kind, asked=asked)
        return result


async def read_steps(client: redis.Redis, prefix: str, queue: str,
                     job_id: str) -> list[dict[str, Any]]:
    """A job's finished steps in the order they were done (fingerprints left out)."""
    raw = await client.hgetall(steps_key(prefix, queue, job_id))
    entries = [json.loads(value) for value in raw.values()]
    for entry in entries:
        entry.pop("fingerprint", None)
    return sorted(entries, key=lambda e: (int(e.get("seq") or 0), str(e.get("name"))))
