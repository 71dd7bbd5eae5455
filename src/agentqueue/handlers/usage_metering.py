"""The usage metering middleware: gives each job its meter (`ctx.state["meter"]`, the ledger
every metered provider call of the job writes to, across all its attempts) and, once the job's
run is over, its usage totals (`ctx.state["usage"]`: input tokens, output tokens, cost in USD),
which the records middleware writes to the job's record (list this one after it)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from agentqueue.engine.channel import CommandChannel
from agentqueue.engine.connection import ClusterClient
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import Middleware, WorkerInfo
from agentqueue.handlers.metering import JobMeter

METER, USAGE = "meter", "usage"


class UsageMetering(Middleware):
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        # The meters' commands, batched per event-loop turn (see CommandChannel); on a cluster
        # each job's keys live on their own slot's primary, so there they go one by one.
        self._channel: CommandChannel | None = None
        self._workers = 0  # one instance serves every queue's worker: open while any runs

    def meter(self, ctx: JobContext) -> JobMeter:
        meter = ctx.state.get(METER)
        if not isinstance(meter, JobMeter):
            meter = ctx.state[METER] = JobMeter(self.client, prefix=self.prefix,
                                                queue=ctx.queue, job_id=ctx.id,
                                                channel=self._channel_for_jobs())
        return meter

    def _channel_for_jobs(self) -> CommandChannel | None:
        if self._channel is None and self._workers and not isinstance(self.client,
                                                                      ClusterClient):
            self._channel = CommandChannel(self.client)
        return self._channel

    async def startup(self, worker: WorkerInfo) -> None:
        self._workers += 1

    async def shutdown(self) -> None:
        self._workers = max(0, self._workers - 1)
        if not self._workers and self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    async def before_job(self, ctx: JobContext) -> None:
        self.meter(ctx)

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        ctx.state[USAGE] = (await self.meter(ctx).usage()).totals

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        ctx.state[USAGE] = (await self.meter(ctx).usage()).totals
