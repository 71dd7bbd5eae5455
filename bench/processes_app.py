"""The job types `bench/processes.py` runs: `noop` returns at once, `io` awaits BENCH_IO_MS."""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel

import agentqueue

app = agentqueue.App(builtin=False)
IO_S = int(os.environ.get("BENCH_IO_MS", "10")) / 1000


class NoInput(BaseModel):
    pass


@app.job("noop", queue="bench-processes")
async def noop(ctx: agentqueue.Context, data: NoInput) -> None:
    return None


@app.job("io", queue="bench-processes")
async def io(ctx: agentqueue.Context, data: NoInput) -> None:
    await asyncio.sleep(IO_S)
