"""An App serving the built-in types whose worker hangs once an email job's handler has
returned — the server has accepted the message and its Message-ID is recorded — after writing
the file MAIL_CRASH_MARKER names: the test SIGKILLs the worker there, before the job's outcome
is stored. Without MAIL_CRASH_MARKER it is a plain App."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import agentqueue
from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import CallNext


class HangAfterSending(agentqueue.Middleware):
    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        result = await call_next()
        marker = os.environ.get("MAIL_CRASH_MARKER")
        if marker:
            await asyncio.to_thread(Path(marker).write_text, ctx.id)
            await asyncio.Event().wait()  # until the test kills this process
        return result


app = agentqueue.App(middleware=[HangAfterSending()])
