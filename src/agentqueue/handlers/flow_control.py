"""Worker middleware that holds jobs back: rate limits per job type and per owner, and the cap
on how many jobs of one organization (and of one user) run at once.

A job over a limit goes back to the queue before anything else happens to it: BullMQ's
`moveToDelayed` with `skipAttempt` (as a handler deferring itself does), then `DelayedError`,
so it is not failed, spends no attempt, and its record stays `queued`. List it first, before
the records middleware, which would otherwise mark it active.

Fairness between tenants comes from the cap. Workers take jobs in queue order; a job of a
tenant at its cap is parked: delayed, and noted in the tenant's parked set for its queue. When
one of the tenant's jobs on that queue ends, the worker promotes the oldest parked one (BullMQ's
`promote`), which re-enters the queue behind what is waiting at its priority; a parked job
nobody promotes (its worker died) comes back after `defer_ms` anyway. So while tenant A, with
10,000 jobs queued, holds its cap of slots, the other slots go to the next jobs in line that are
not A's: tenant B's 10 run at once instead of after A's 10,000. BullMQ's data model stays as it
is (one queue; Node workers and dashboards see ordinary delayed jobs); the price is that workers
pass over A's backlog once, parking each of its jobs (a few round trips each; bench/fairness.py).

Rate limits are windows of `engine.rate_limit`: the window's remaining time is the delay, up to
5 s (then the job is looked at again, so a limit changed at run time holds soon).
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from typing import Any

from bullmq.custom_errors import DelayedError

from agentqueue.core.limits import LimitStore, owner_key
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware
from agentqueue.engine.rate_limit import Window, WindowCounters
from agentqueue.metrics.aggregate import MetricsRecorder
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner

log = logging.getLogger("agentqueue.limits")

HELD = "flow_control_held"
_PROMOTE_TRIES = 5
_MAX_OWNERS_KEPT = 100_000
MAX_LIMIT_DEFER_MS = 5_000


def _member(ctx: JobContext) -> str:
    return f"{ctx.queue}:{ctx.id}"


def tenant_of(owner: JobOwner) -> str:
    """An organization, or a user without one."""
    return f"org:{owner.org_id}" if owner.org_id else f"user:{owner.user_id}"


class FlowControl(Middleware):
    def __init__(self, limits: LimitStore, counters: WindowCounters, *,
                 records: Records | None, defer_ms: int = 10_000,
                 hold_ms: int = 330_000) -> None:
        """`defer_ms`: how long a parked job waits at most; `hold_ms`: how long a running job
        counts against its tenant's cap at most (a job whose worker died stops counting
        then), longer than the job time limit."""
        self.limits = limits
        self.counters = counters
        self.records = records
        self.defer_ms = defer_ms
        self.hold_ms = hold_ms
        # Set by the worker's builder: jobs held back are counted, by limit.
        self.metrics: MetricsRecorder | None = None
        # Owners never change: a job parked and taken again is not looked up twice.
        self._owners: OrderedDict[str, JobOwner | None] = OrderedDict()

    async def before_job(self, ctx: JobContext) -> None:
        rules = await self.limits.rules()
        caps = rules.tenants
        owner_limited = rules.per_owner is not None or caps.per_org or caps.per_user
        type_rate = rules.job_types.get(ctx.name)
        if not owner_limited and type_rate is None:
            return
        owner = await self._owner(ctx) if owner_limited else None
        windows: list[Window] = []
        if type_rate is not None:
            windows.append(Window(self.counters.key("type", ctx.name), type_rate.max,
                                  type_rate.duration))
        if owner is not None and rules.per_owner is not None:
            windows.append(Window(self.counters.key("owner", tenant_of(owner)),
                                  rules.per_owner.max, rules.per_owner.duration))
        held: list[str] = []
        if owner is not None and (caps.per_org or caps.per_user):
            sets: list[tuple[str, int]] = []
            if caps.per_org and owner.org_id:
                sets.append((self.counters.key("running", "org", owner.org_id), caps.per_org))
            if caps.per_user and owner.user_id:
                sets.append((self.counters.key("running", "user", owner.user_id),
                             caps.per_user))
            full = await self.counters.hold(sets, _member(ctx), for_ms=self.hold_ms)
            if full:
                await self._park(ctx, *sets[full - 1])
            held = [key for key, _ in sets]
            ctx.state[HELD] = held
        wait_ms = await self.counters.take(windows)
        if wait_ms:
            if held:
                await self._release(ctx)
            # Looked at again within MAX_LIMIT_DEFER_MS: a limit lifted at run time frees the
            # jobs it held back soon, not at the end of a long window.
            delay = min(wait_ms, MAX_LIMIT_DEFER_MS) + random.randint(0, 50)
            await self._defer(ctx, delay, "a rate limit is reached")

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        # The places are freed as soon as the handler is done, before the outcome is stored:
        # the parked job let back in is then there for the same call that stores this one to
        # fetch next (the outcome hooks free them too, for a job that ended otherwise).
        try:
            return await call_next()
        finally:
            await self._release(ctx)

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        await self._release(ctx)

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        await self._release(ctx)

    async def _release(self, ctx: JobContext) -> None:
        """Free the job's places; each freed place lets the oldest job parked for it back."""
        keys = ctx.state.pop(HELD, None)
        if not keys:
            return
        await self.counters.release(keys, _member(ctx))
        for key in keys:
            await self._promote_next(ctx, key)

    def _parked_key(self, running_key: str, queue: str) -> str:
        return f"{running_key}:parked:{queue}"

    async def _park(self, ctx: JobContext, running_key: str, cap: int) -> None:
        """Put the job back until a place in `running_key` frees (or `defer_ms` passes)."""
        parked = self._parked_key(running_key, ctx.queue)
        now = round(time.time() * 1000)
        # Noted first: once the job is delayed, nothing may fail before DelayedError, or the
        # handler would run a job this worker no longer holds.
        async with self.counters.client.pipeline(transaction=False) as pipe:
            pipe.zadd(parked, {ctx.id: now})
            pipe.pexpire(parked, self.hold_ms)
            await pipe.execute()
        await ctx.job.moveToDelayed(now + self.defer_ms, str(ctx.job.token))
        try:
            # A place may have freed since the look, with nobody parked then to let back in.
            if await self.counters.client.zcard(running_key) < cap:
                await self._promote_next(ctx, running_key)
        except Exception as exc:  # it comes back after defer_ms anyway
            log.warning("Could not let a parked job of %r back: %s", ctx.queue, exc)
        log.debug("Job %s of %r parked: its tenant is at its cap", ctx.id, ctx.queue)
        self._count_wait(ctx, "tenant")
        raise DelayedError("its tenant is at its cap of running jobs")

    async def _promote_next(self, ctx: JobContext, running_key: str) -> None:
        """Let the oldest job parked for `running_key` on this queue back into the queue."""
        parked = self._parked_key(running_key, ctx.queue)
        scripts = getattr(ctx.job.queue, "scripts", None)
        if scripts is None:
            return
        for _ in range(_PROMOTE_TRIES):
            popped = await self.counters.client.zpopmin(parked)
            if not popped:
                return
            try:
                await scripts.promote(str(popped[0][0]))
                return
            except Exception:  # not delayed any more (its backstop ran out, or removed)
                continue

    async def _owner(self, ctx: JobContext) -> JobOwner | None:
        """Who the job belongs to, from its record (never from its data)."""
        key = _member(ctx)
        if key in self._owners:
            return self._owners[key]
        owner = await self._look_up_owner(ctx)
        self._owners[key] = owner
        if len(self._owners) > _MAX_OWNERS_KEPT:
            self._owners.popitem(last=False)
        return owner

    async def _look_up_owner(self, ctx: JobContext) -> JobOwner | None:
        noted = await self.counters.client.get(owner_key(self.limits.prefix, ctx.queue, ctx.id))
        if noted is not None:  # the submitter's note (core.limits.note_owner)
            org, _, user = str(noted).partition("\x1f")
            return JobOwner(user_id=user, org_id=org or None)
        owner_of = getattr(ctx, "owner", None)
        if owner_of is not None:
            found: JobOwner | None = await owner_of()
            return found
        if self.records is None:
            return None
        record = await self.records.get(ctx.queue, ctx.id)
        if record is None or record.owner == NO_OWNER:
            return None
        return record.owner

    async def _defer(self, ctx: JobContext, delay_ms: int, why: str) -> None:
        """Put the job back in the queue for `delay_ms`, no attempt spent; never returns."""
        token = str(ctx.job.token)
        await ctx.job.moveToDelayed(round(time.time() * 1000) + delay_ms, token)
        log.debug("Job %s of %r waits %d ms: %s", ctx.id, ctx.queue, delay_ms, why)
        self._count_wait(ctx, "rate")
        raise DelayedError(why)

    def _count_wait(self, ctx: JobContext, limit: str) -> None:
        if self.metrics is not None:
            self.metrics.count("agentqueue_rate_limit_waits_total",
                               {"queue": ctx.queue, "limit": limit})
