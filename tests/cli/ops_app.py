"""An App for the operator commands' tests (`agentqueue jobs|queues|workers|usage`).

`steps` reports progress 1/3 "step one"; given `release` (a file path) it then stays active
until that file exists; then it streams "Hello world" into its progress (and, given `then`,
stays active until that file exists too), reports 3/3 "done" and answers `{"ok": true}`.
Given `fail`, it fails for good with that reason instead. `noop` (on a queue of its own, for
pause and clean) answers at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

import agentqueue
from tests.support.waiting import eventually

QUEUE, SPARE = "ops", "ops-spare"


class Nothing(BaseModel):
    pass


class Steps(BaseModel):
    release: str | None = None
    then: str | None = None
    fail: str | None = None


async def released(path: str | None) -> None:
    if path is None:
        return
    marker = Path(path)

    async def exists() -> bool:
        return await asyncio.to_thread(marker.exists)

    await eventually(exists, timeout=110, what=f"the test's {marker.name}")


app = agentqueue.App(builtin=False)


@app.job("steps", queue=QUEUE, attempts=1, timeout=120)
async def steps(ctx: agentqueue.Context, data: Steps) -> dict[str, bool]:
    await ctx.progress(1, 3, "step one")
    await released(data.release)
    if data.fail is not None:
        raise agentqueue.PermanentJobError(data.fail)
    stream = ctx.text_stream()
    await stream("Hello")
    await stream(" world")
    await stream.flush()
    await released(data.then)
    await stream.close()
    await ctx.progress(3, 3, "done")
    return {"ok": True}


@app.job("noop", queue=SPARE, attempts=1)
async def noop(ctx: agentqueue.Context, data: Nothing) -> dict[str, bool]:
    return {"ok": True}
