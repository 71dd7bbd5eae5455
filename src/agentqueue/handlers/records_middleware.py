"""The records middleware: keeps each job's SQL record in step with what the worker does to it
(active, progress, completed, failed, cancelled, queued again for a retry).

Outcomes are written after Redis has them (see `engine.middleware`): a worker killed in between
leaves the record behind, and the repair service brings it up to date. A job a plain BullMQ
producer added (no record) gets one when a worker takes it, and so does each run of a schedule
(owned as its schedule: `engine.schedules`). Usage totals come from
`ctx.state["usage"]`, which the usage metering middleware fills (list it after this one).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import Middleware
from agentqueue.engine.queue import CANCELLED_REASON
from agentqueue.engine.schedules import parse_run_id, run_options
from agentqueue.records.store import JobExistsError, Records
from agentqueue.records.views import NO_OWNER, JobOwner

# The history entry of a job run again because its worker stopped mid-run.
STALLED_RERUN_MESSAGE = "re-run after its worker stopped (stalled)"

# The first history entry of a job a plain BullMQ producer added (it had no record till then).
ADOPTED_MESSAGE = "added to the queue directly (no record); recorded when a worker took it"

# Progress is written to the record at most this often (the live value is in Redis).
PROGRESS_WRITE_INTERVAL_S = 1.0

Usage = tuple[int, int, float]  # input tokens, output tokens, cost in USD


class RecordsMiddleware(Middleware):
    def __init__(self, records: Records) -> None:
        self.records = records
        self._last_progress: dict[tuple[str, str], float] = {}

    async def before_job(self, ctx: JobContext) -> None:
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
        opts = ctx.opts
        created = (datetime.fromtimestamp(job.timestamp / 1000, UTC)
                   if isinstance(job.timestamp, int | float) and job.timestamp > 0 else None)
        owner, message = NO_OWNER, ADOPTED_MESSAGE
        scheduled = parse_run_id(ctx.id) if ctx.job.repeatJobKey else None
        if scheduled is not None:
            # A schedule's run: owned as its schedule (the owner its template carries).
            named = run_options(opts).get("owner") or {}
            if named.get("userId"):
                owner = JobOwner(user_id=str(named["userId"]), org_id=named.get("orgId"))
            message = (f"run of schedule {scheduled[0]!r} due at "
                       f"{datetime.fromtimestamp(scheduled[1] / 1000, UTC).isoformat()}")
        await self.records.create_job(
            queue=ctx.queue, job_id=ctx.id, type=ctx.name, data=ctx.data, owner=owner,
            max_attempts=int(opts.get("attempts") or 1), priority=int(opts.get("priority") or 0),
            status="active", attempt=ctx.attempt, message=message, created_at=created,
        )

    async def on_progress(self, ctx: JobContext, progress: Any) -> None:
        key = (ctx.queue, ctx.id)
        now = time.monotonic()
        if now - self._last_progress.get(key, 0.0) < PROGRESS_WRITE_INTERVAL_S:
            return
        self._last_progress[key] = now
        # Written behind, many jobs a transaction: the live value is in Redis already.
        self.records.note_progress(ctx.queue, ctx.id, progress)

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        self._last_progress.pop((ctx.queue, ctx.id), None)
        provider = result.get("provider") if isinstance(result, dict) else None
        model = result.get("model") if isinstance(result, dict) else None
        await self.records.mark(
            ctx.queue, ctx.id, "completed", attempt=int(ctx.job.attemptsMade or 0),
            result=result, progress=100, usage=_usage(ctx), provider=provider, model=model,
        )

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        attempt = int(ctx.job.attemptsMade or 0)
        reason = str(error)
        if will_retry:
            # Waiting out its backoff: queued again, with this attempt's error kept.
            await self.records.mark(ctx.queue, ctx.id, "queued", attempt=attempt,
                                    message=f"attempt failed, will retry: {reason}",
                                    usage=_usage(ctx))
            return
        self._last_progress.pop((ctx.queue, ctx.id), None)
        status = "cancelled" if reason == CANCELLED_REASON else "failed"
        await self.records.mark(ctx.queue, ctx.id, status, attempt=attempt, error=reason,
                                message=reason, usage=_usage(ctx))


def _usage(ctx: JobContext) -> Usage | None:
    usage = ctx.state.get("usage")
    return usage if isinstance(usage, tuple) else None
