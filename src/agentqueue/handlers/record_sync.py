"""Keeps each job's SQL record in step with what the worker does to it.

Transitions are written after Redis has them (see `JobListener`): a worker killed in between
leaves the record behind, and the repair service brings it up to date.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
from bullmq import Job

from agentqueue.engine.queue import CANCELLED_REASON
from agentqueue.engine.worker import JobContext
from agentqueue.handlers.metering import JobMeter
from agentqueue.records.store import JobExistsError, Records
from agentqueue.records.views import NO_OWNER

# The history entry of a job run again because its worker stopped mid-run.
STALLED_RERUN_MESSAGE = "re-run after its worker stopped (stalled)"

# The first history entry of a job a plain BullMQ producer added (it had no record till then).
ADOPTED_MESSAGE = "added to the queue directly (no record); recorded when a worker took it"

# Progress is written to the record at most this often (the live value is in Redis).
PROGRESS_WRITE_INTERVAL_S = 1.0


class RecordSync:
    def __init__(self, records: Records, client: redis.Redis, *, prefix: str) -> None:
        self.records = records
        self.client = client
        self.prefix = prefix
        self._last_progress: dict[tuple[str, str], float] = {}

    async def on_active(self, ctx: JobContext) -> None:
        message = STALLED_RERUN_MESSAGE if ctx.stalls else None
        if await self.records.mark(ctx.queue, ctx.id, "active", attempt=ctx.attempt,
                                   message=message):
            return
        try:
            await self._adopt(ctx)
        except JobExistsError:
            # Another worker (a stalled run's successor, say) recorded it first: follow it.
            await self.records.mark(ctx.queue, ctx.id, "active", attempt=ctx.attempt,
                                    message=message)

    async def _adopt(self, ctx: JobContext) -> None:
        """Record a job that a plain BullMQ producer added (Node or Python, bypassing our APIs):
        owned by nobody (`NO_OWNER`, so only admins list it), as BullMQ describes it."""
        job = ctx.job
        opts = job.opts or {}
        created = (datetime.fromtimestamp(job.timestamp / 1000, UTC)
                   if isinstance(job.timestamp, int | float) and job.timestamp > 0 else None)
        await self.records.create_job(
            queue=ctx.queue, job_id=ctx.id, type=ctx.name, data=ctx.data, owner=NO_OWNER,
            max_attempts=int(opts.get("attempts") or 1), priority=int(opts.get("priority") or 0),
            status="active", attempt=ctx.attempt, message=ADOPTED_MESSAGE, created_at=created,
        )

    async def on_progress(self, ctx: JobContext, progress: Any) -> None:
        key = (ctx.queue, ctx.id)
        now = time.monotonic()
        if now - self._last_progress.get(key, 0.0) < PROGRESS_WRITE_INTERVAL_S:
            return
        self._last_progress[key] = now
        await self.records.set_progress(ctx.queue, ctx.id, progress)

    async def _usage(self, queue: str, job_id: str) -> tuple[int, int, float]:
        meter = JobMeter(self.client, prefix=self.prefix, queue=queue, job_id=job_id)
        return (await meter.usage()).totals

    async def on_completed(self, queue: str, job: Job, result: Any) -> None:
        job_id = str(job.id)
        self._last_progress.pop((queue, job_id), None)
        provider = result.get("provider") if isinstance(result, dict) else None
        model = result.get("model") if isinstance(result, dict) else None
        await self.records.mark(
            queue, job_id, "completed", attempt=int(job.attemptsMade or 0), result=result,
            progress=100, usage=await self._usage(queue, job_id), provider=provider, model=model,
        )

    async def on_failed(self, queue: str, job: Job, error: str, will_retry: bool) -> None:
        job_id = str(job.id)
        usage = await self._usage(queue, job_id)
        if will_retry:
            # Waiting out its backoff: queued again, with this attempt's error kept.
            await self.records.mark(queue, job_id, "queued", attempt=int(job.attemptsMade or 0),
                                    message=f"attempt failed, will retry: {error}", usage=usage)
            return
        self._last_progress.pop((queue, job_id), None)
        status = "cancelled" if error == CANCELLED_REASON else "failed"
        await self.records.mark(queue, job_id, status, attempt=int(job.attemptsMade or 0),
                                error=error, message=error, usage=usage)
