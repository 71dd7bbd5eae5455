"""`Tracing`: a span for each run of a job, continuing the trace its enqueue started."""

from __future__ import annotations

from typing import Any

from agentqueue import tracing
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware


class Tracing(Middleware):
    """A consumer span per run, current while the handler runs (its provider and tool calls
    are its children); the job's log lines carry its trace id. First in the chain, so its
    span covers every other hook."""

    async def before_job(self, ctx: JobContext) -> None:
        ctx.state[tracing.JOB_SPAN] = tracing.start_span(
            f"process {ctx.queue}", kind="consumer", parent=tracing.parent_of(ctx.opts),
            attributes={"messaging.system": "bullmq", "messaging.destination.name": ctx.queue,
                        "messaging.message.id": ctx.id, "agentqueue.job.type": ctx.name,
                        "agentqueue.job.attempt": ctx.attempt})

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        # Made current here, not in before_job: a run that ends without outcome hooks (a
        # parent waiting for its children) must not leave its span current in the slot's task.
        with tracing.current(ctx.state.get(tracing.JOB_SPAN)):
            return await call_next()

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        span = ctx.state.get(tracing.JOB_SPAN)
        if span is not None:
            span.end()

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        span = ctx.state.get(tracing.JOB_SPAN)
        if span is not None:
            span.set_attribute("agentqueue.job.will_retry", will_retry)
            tracing.failed(span, error)
            span.end()
