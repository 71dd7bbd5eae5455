"""The usage metering middleware: gives each job its meter (`ctx.state["meter"]`, the ledger
every metered provider call of the job writes to, across all its attempts) and, once the job's
run is over, its usage totals (`ctx.state["usage"]`: input tokens, output tokens, cost in USD),
which the records middleware writes to the job's record (list this one after it)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import Middleware
from agentqueue.handlers.metering import JobMeter

METER, USAGE = "meter", "usage"


class UsageMetering(Middleware):
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def meter(self, ctx: JobContext) -> JobMeter:
        meter = ctx.state.get(METER)
        if not isinstance(meter, JobMeter):
            meter = ctx.state[METER] = JobMeter(self.client, prefix=self.prefix,
                                                queue=ctx.queue, job_id=ctx.id)
        return meter

    async def before_job(self, ctx: JobContext) -> None:
        self.meter(ctx)

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        ctx.state[USAGE] = (await self.meter(ctx).usage()).totals

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        ctx.state[USAGE] = (await self.meter(ctx).usage()).totals
