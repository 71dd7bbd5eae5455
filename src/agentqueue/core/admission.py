"""Back-pressure: refuse new jobs while a queue or a tenant already has too many unfinished.

Without it the API accepts work far faster than workers finish it (a soak left 19,205 jobs
queued two minutes after it ended). `BacklogLimits.check` runs before a job's id is reserved or
its record written, so a refused submission leaves nothing behind; the API answers 429 with
`Retry-After`.

- Per queue (MAX_QUEUE_BACKLOG): jobs no worker has taken yet (waiting, paused, prioritized,
  delayed), counted in Redis with one pipelined round trip. The count is reused for a short
  while (`cache_s`) and this process's own admissions are added to it meanwhile, so a burst is
  held near the limit without a round trip per request; other processes' admissions and
  finished jobs show within `cache_s`. Concurrent submissions may overshoot a little: the
  limit is back-pressure, not a quota.
- Per tenant (MAX_TENANT_BACKLOG): the owner's unfinished jobs (pending, queued, active) in the
  records, which are the only place that knows a job's owner; an indexed count (org or user
  id, status) that costs at most the tenant's backlog. A tenant is an organization, or a user
  without one. Records are kept right by the workers and the repair service, so the count
  needs no counter of its own to drift.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis.asyncio as redis

from agentqueue.engine.backlog import queued_jobs
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner

K = TypeVar("K")
_MAX_CACHED = 10_000


class BacklogFull(Exception):
    """A submission refused because a queue or a tenant has too many unfinished jobs."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass
class _Count:
    value: int
    at: float


@dataclass
class BacklogLimits:
    client: redis.Redis
    records: Records
    prefix: str
    max_queue: int = 10_000  # 0: unlimited
    max_tenant: int = 1_000  # 0: unlimited
    retry_after_s: int = 5
    cache_s: float = 0.2
    _queued: dict[str, _Count] = field(default_factory=dict)
    _unfinished: dict[tuple[str, str | None], _Count] = field(default_factory=dict)
    _counting: dict[tuple[int, object], asyncio.Future[_Count]] = field(default_factory=dict)

    async def check(self, queue: str, owner: JobOwner) -> None:
        """Raise `BacklogFull` if `queue` or `owner`'s tenant is at its limit; else count the
        job about to be submitted as admitted."""
        queued = unfinished = None
        if self.max_queue:
            queued = await self._fresh(self._queued, queue, self._count_queued)
            if queued.value >= self.max_queue:
                raise BacklogFull(
                    f"queue {queue} has {queued.value} jobs waiting (limit {self.max_queue}, "
                    "MAX_QUEUE_BACKLOG); try again later", retry_after_s=self.retry_after_s)
        if self.max_tenant:
            tenant = (owner.user_id, None) if owner.org_id is None else ("", owner.org_id)
            unfinished = await self._fresh(self._unfinished, tenant, self._count_unfinished)
            if unfinished.value >= self.max_tenant:
                who = f"organization {owner.org_id}" if owner.org_id else f"user {owner.user_id}"
                raise BacklogFull(
                    f"{who} has {unfinished.value} unfinished jobs (limit {self.max_tenant}, "
                    "MAX_TENANT_BACKLOG); try again later", retry_after_s=self.retry_after_s)
        for count in (queued, unfinished):
            if count is not None:
                count.value += 1  # this admission, until the next count sees it

    async def _fresh(
        self, cache: dict[K, _Count], key: K, count: Callable[[K], Awaitable[int]]
    ) -> _Count:
        now = time.monotonic()
        cached = cache.get(key)
        if cached is not None and now - cached.at < self.cache_s:
            return cached
        # One count at a time per key: the requests that find the count stale together (a
        # burst does, every `cache_s`) wait for the same one instead of each asking.
        counting = self._counting.get((id(cache), key))
        if counting is None:
            counting = asyncio.ensure_future(self._recount(cache, key, count, now))
            self._counting[(id(cache), key)] = counting
            counting.add_done_callback(lambda _: self._counting.pop((id(cache), key), None))
        return await asyncio.shield(counting)

    async def _recount(
        self, cache: dict[K, _Count], key: K, count: Callable[[K], Awaitable[int]], now: float
    ) -> _Count:
        fresh = cache[key] = _Count(await count(key), now)
        if len(cache) > _MAX_CACHED:  # many tenants: forget the stale ones
            for stale in [k for k, c in cache.items() if now - c.at >= self.cache_s]:
                del cache[stale]
        return fresh

    async def _count_queued(self, queue: str) -> int:
        return await queued_jobs(self.client, prefix=self.prefix, queue=queue)

    async def _count_unfinished(self, tenant: tuple[str, str | None]) -> int:
        user_id, org_id = tenant
        if org_id is not None:
            return await self.records.count_unfinished(org_id=org_id)
        return await self.records.count_unfinished(user_id=user_id)
