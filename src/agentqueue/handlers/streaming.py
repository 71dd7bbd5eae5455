"""Streamed model output, pushed into the job's progress as it arrives.

Writing progress on every token would cost a Redis round trip (and an event) per token, so
updates are coalesced: at most one every `interval` seconds, and a piece that arrives inside
that window is written when it closes, so no token waits longer than `interval` to reach the job.
Push subscribers (SSE, WebSocket, `Job.events`) need every piece at once: each delta also goes,
uncoalesced, to the queue's deltas stream (`engine.deltas`), when the context provides one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from agentqueue.engine.worker import JobContext

# Partial text beyond this is not copied into progress (the result holds it all).
MAX_PROGRESS_TEXT = 20_000


class TextProgress:
    def __init__(self, ctx: JobContext, *, percent: int = 50, interval: float = 0.05) -> None:
        self.ctx = ctx
        self.percent = percent
        self.interval = interval
        self.text = ""
        self._written: str | None = ""
        self._last_write = 0.0
        self._pending: asyncio.Task[None] | None = None
        self._deltas = ctx.delta_writer()
        self._offset = 0  # where the next delta starts in this attempt's streamed text

    def payload(self) -> dict[str, Any]:
        return {"percent": self.percent, "text": self.text[:MAX_PROGRESS_TEXT], "streaming": True}

    async def __call__(self, delta: str) -> None:
        """The `on_text` callback handed to a provider."""
        if not delta:
            return
        if self._deltas is not None:
            await self._deltas.write(self._offset, delta)
        self._offset += len(delta)
        self.text += delta
        wait = self._last_write + self.interval - time.monotonic()
        if wait <= 0:
            await self._write()
        elif self._pending is None:
            self._pending = asyncio.create_task(self._write_after(wait))

    async def _write_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._pending = None
        await self._write()

    async def flush(self) -> None:
        """Write the current state now."""
        self._written = None
        await self._write()

    async def _write(self) -> None:
        if self.text == self._written:
            return
        self._last_write = time.monotonic()
        self._written = self.text
        await self.ctx.progress(self.payload())

    async def close(self) -> None:
        """Write what is left; call once the stream has ended."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
            self._pending = None
        await self._write()
