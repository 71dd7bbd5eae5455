"""Time limits: a job that runs too long fails with "job timed out after Ns".

The most specific limit applies: the job's own `timeout` option (milliseconds, in the BullMQ job
options as Bull 3 named it: `opts["timeout"]`), else its type's (registered with
`WorkerRuntime.register(..., timeout_s=)`), else the worker's `job_timeout_s`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext, Middleware


def limit_for(ctx: JobContext, default_s: float | None) -> float | None:
    """The job's time limit in seconds (None: no limit)."""
    own = ctx.opts.get("timeout")
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return own / 1000
    if ctx.type_timeout_s is not None:
        return ctx.type_timeout_s
    return default_s


class TimeLimit(Middleware):
    def __init__(self, default_s: float | None = 300.0) -> None:
        self.default_s = default_s

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        seconds = limit_for(ctx, self.default_s)
        if seconds is None:
            return await call_next()
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                return await call_next()
        except TimeoutError as exc:
            if not limit.expired():
                raise  # the handler's own timeout (an upstream call's): its message stands
            raise TimeoutError(f"job timed out after {seconds:g}s") from exc
