"""An App whose job says which process ran it, for `agentqueue worker --processes N` tests.

`whoami` answers `{"pid": <the worker process's pid>}`; given `hold_until`, a file path, it
first stays active until that file exists (so a test can keep jobs running across a signal).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from tests.support.waiting import eventually

QUEUE = "pids"


class WhoAmI(BaseModel):
    hold_until: str | None = None
    started_dir: str | None = None  # each job writes <dir>/<job id> with its pid on start


def make_app(settings: Settings | None = None) -> agentqueue.App:
    app = agentqueue.App(settings, builtin=False)

    @app.job("whoami", queue=QUEUE, attempts=1, timeout=120)
    async def whoami(ctx: agentqueue.Context, data: WhoAmI) -> dict[str, int]:
        if data.started_dir is not None:
            marker = Path(data.started_dir) / ctx.id
            await asyncio.to_thread(marker.write_text, str(os.getpid()))
        if data.hold_until is not None:
            released = Path(data.hold_until)

            async def release() -> bool:
                return await asyncio.to_thread(released.exists)

            await eventually(release, timeout=110, what="the test's release")
        return {"pid": os.getpid()}

    return app


app = make_app()
