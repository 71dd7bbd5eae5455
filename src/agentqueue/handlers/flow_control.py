"""Worker middleware that holds jobs back: rate limits per job type and per owner, and the cap
on how many jobs of one organization (and of one user) run at once.

A job over a limit goes back to the queue before anything else happens to it: BullMQ's
`moveToDelayed` with `skipAttempt` (as a handler deferring itself does), then `DelayedError`,
so it is not failed, spends no attempt, and its record stays `queued`. List it first, before
the records middleware, which would otherwise mark it active.

Fairness between tenants comes from the cap. Workers take jobs in queue order; a job of a
tenant at its cap is put back, due again after `defer_ms` (doubling each time the same job is
put back, up to ten times as long), and re-enters the queue behind what is waiting at its
priority. So while tenant A, with 10,000 jobs queued, holds its cap of slots, the remaining
slots go to the next jobs in line that are not A's: tenant B's 10 run at once instead of after
A's 10,000. This keeps BullMQ's data model as it is (one queue, Node workers and dashboards see
ordinary delayed jobs); the price is that the workers pass over A's backlog, moving each of its
jobs at the front back, a few round trips each (see bench/fairness.py).

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

from agentqueue.core.limits import LimitStore
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import Middleware
from agentqueue.engine.rate_limit import Window, WindowCounters
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner

log = logging.getLogger("agentqueue.limits")

HELD = "flow_control_held"
_MAX_REMEMBERED = 10_000
_MAX_DEFER_FACTOR = 10
MAX_LIMIT_DEFER_MS = 5_000


def tenant_of(owner: JobOwner) -> str:
    """An organization, or a user without one."""
    return f"org:{owner.org_id}" if owner.org_id else f"user:{owner.user_id}"


class FlowControl(Middleware):
    def __init__(self, limits: LimitStore, counters: WindowCounters, *,
                 records: Records | None, defer_ms: int = 250, hold_ms: int = 330_000) -> None:
        """`hold_ms`: how long a running job counts against its tenant's cap at most (a job
        whose worker died stops counting then); longer than the job time limit."""
        self.limits = limits
        self.counters = counters
        self.records = records
        self.defer_ms = defer_ms
        self.hold_ms = hold_ms
        self._deferrals: OrderedDict[str, int] = OrderedDict()

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
            member = f"{ctx.queue}:{ctx.id}"
            if await self.counters.hold(sets, member, for_ms=self.hold_ms):
                await self._defer(ctx, self._cap_delay(ctx), "its tenant is at its cap")
            held = [key for key, _ in sets]
            ctx.state[HELD] = held
        wait_ms = await self.counters.take(windows)
        if wait_ms:
            if held:
                await self.counters.release(held, f"{ctx.queue}:{ctx.id}")
                ctx.state.pop(HELD, None)
            # Looked at again within MAX_LIMIT_DEFER_MS: a limit lifted at run time frees the
            # jobs it held back soon, not at the end of a long window.
            delay = min(wait_ms, MAX_LIMIT_DEFER_MS) + random.randint(0, 50)
            await self._defer(ctx, delay, "a rate limit is reached")
        self._deferrals.pop(ctx.id, None)

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        await self._release(ctx)

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        await self._release(ctx)

    async def _release(self, ctx: JobContext) -> None:
        held = ctx.state.pop(HELD, None)
        if held:
            await self.counters.release(held, f"{ctx.queue}:{ctx.id}")

    async def _owner(self, ctx: JobContext) -> JobOwner | None:
        """Who the job belongs to, from its record (never from its data)."""
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

    def _cap_delay(self, ctx: JobContext) -> int:
        turns = self._deferrals.pop(ctx.id, 0)
        self._deferrals[ctx.id] = turns + 1
        if len(self._deferrals) > _MAX_REMEMBERED:
            self._deferrals.popitem(last=False)
        return self.defer_ms * min(2 ** turns, _MAX_DEFER_FACTOR)

    async def _defer(self, ctx: JobContext, delay_ms: int, why: str) -> None:
        """Put the job back in the queue for `delay_ms`, no attempt spent; never returns."""
        token = str(ctx.job.token)
        await ctx.job.moveToDelayed(round(time.time() * 1000) + delay_ms, token)
        log.debug("Job %s of %r waits %d ms: %s", ctx.id, ctx.queue, delay_ms, why)
        raise DelayedError(why)
