"""Lifespan: a job that carries `expiresAt` (epoch milliseconds) in its BullMQ options and is
taken after that moment fails at once, without retry, and is not run (seed 004's lifespan)."""

from __future__ import annotations

import time

from agentqueue.engine.context import JobContext, PermanentJobError
from agentqueue.engine.middleware import Middleware

EXPIRED_REASON = "expired: not run before its lifespan ended"


class Lifespan(Middleware):
    async def before_job(self, ctx: JobContext) -> None:
        expires = ctx.opts.get("expiresAt")
        if (isinstance(expires, int | float) and not isinstance(expires, bool)
                and time.time() * 1000 >= expires):
            raise PermanentJobError(EXPIRED_REASON)
