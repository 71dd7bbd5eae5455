"""The job-logging middleware against a real Redis: a line when a job starts, and one when it
completes or fails, saying how long it ran."""

from __future__ import annotations

import logging
import re

import pytest

from agentqueue.engine.context import JobContext
from agentqueue.engine.job_log import JobLog
from agentqueue.engine.queue import JobQueue
from tests.support.waiting import eventually
from tests.support.workers import StartWorker, finished


async def test_start_finish_and_failure_lines_with_durations(
    mw_queue: JobQueue, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    async def summarize(ctx: JobContext) -> dict[str, int]:
        return {"tokenUsed": 12, "costCents": 3}

    async def broken(ctx: JobContext) -> None:
        raise RuntimeError("provider said no")

    with caplog.at_level(logging.INFO, logger="agentqueue.jobs"):
        await start_worker({"summarize": summarize, "broken": broken}, [JobLog()])
        ok = await mw_queue.add("summarize", {"organizationId": "acme"})
        bad = await mw_queue.add("broken", {}, attempts=2)
        await finished(mw_queue, ok)
        await finished(mw_queue, bad)

        async def all_logged() -> bool:
            return f"Job {bad} failed after" in caplog.text and "will retry" in caplog.text \
                and "(attempt 2 of 2): provider said no" in caplog.text

        await eventually(all_logged, what="the failure lines")
    text = caplog.text
    assert f"Processing job {ok} of type SUMMARIZE for org acme (attempt 1)" in text
    assert re.search(rf"Job {ok} completed successfully in \d+ms\. Tokens: 12, Cost: \$0\.0300",
                     text)
    assert f"Processing job {bad} of type BROKEN for org - (attempt 2)" in text
    assert re.search(rf"Job {bad} failed after \d+ms \(attempt 1 of 2\); will retry: "
                     "provider said no", text)
