"""Job logging: a line when a job starts, and one when it completes or fails, with how long
it ran."""

from __future__ import annotations

import logging
import time
from typing import Any

from agentqueue import tracing
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware
from agentqueue.engine.queue import CANCELLED_REASON
from agentqueue.logs import about_job

_STARTED = "job_log.started"


class JobLog(Middleware):
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("agentqueue.jobs")

    async def before_job(self, ctx: JobContext) -> None:
        ctx.state[_STARTED] = time.monotonic()
        data = ctx.data if isinstance(ctx.data, dict) else {}
        # As seed 003's processor logs it: "Processing job 7 of type SUMMARIZE for org acme".
        self.log.info("Processing job %s of type %s for org %s (attempt %d)", ctx.id,
                      ctx.name.upper(), data.get("organizationId") or "-", ctx.attempt,
                      extra=_fields(ctx))

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        with about_job(_fields(ctx)):
            return await call_next()

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        usage = ""
        if isinstance(result, dict) and "tokenUsed" in result:
            usage = (f". Tokens: {result.get('tokenUsed', 0)}, "
                     f"Cost: ${float(result.get('costCents') or 0) / 100:.4f}")
        self.log.info("Job %s completed successfully in %s%s", ctx.id, _took(ctx), usage,
                      extra=_fields(ctx))

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        attempts = int(ctx.opts.get("attempts") or 1)
        self.log.warning("Job %s failed after %s (attempt %d of %d)%s: %s", ctx.id, _took(ctx),
                         int(ctx.job.attemptsMade or 0), attempts,
                         "; will retry" if will_retry else "", error, extra=_fields(ctx))
        if not will_retry and str(error) != CANCELLED_REASON:
            # As seed 002 logs it: a job that failed for good is a dead letter (listed and
            # replayed from `agentqueue.core.dead_letters`).
            made = int(ctx.job.attemptsMade or 0)
            self.log.warning("Job %s moved to dead letter queue after %d attempt%s%s", ctx.id,
                             made, "" if made == 1 else "s",
                             "" if made >= attempts else " (a permanent failure: not retried)",
                             extra=_fields(ctx))


def _fields(ctx: JobContext) -> dict[str, str]:
    """The job's id, queue and type (and its run's trace ids, when traced) for JSON lines."""
    fields = {"job_id": ctx.id, "queue": ctx.queue, "job_type": ctx.name}
    ids = tracing.ids_of(ctx.state.get(tracing.JOB_SPAN)) if tracing.enabled() else None
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


def _took(ctx: JobContext) -> str:
    started = ctx.state.get(_STARTED)
    if not isinstance(started, float):
        return "0ms (not run)"
    return f"{(time.monotonic() - started) * 1000:.0f}ms"
