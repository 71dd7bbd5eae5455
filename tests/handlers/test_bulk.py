"""The `bulk-operation` job type from Python, against real Redis and SQLite: one job type over
hundreds of items in chunks, failures listed by index while the rest goes on, progress as items
done of total; a bulk job retried after an attempt broke off goes on from its last chunk; items
that can never run are refused before anything is queued."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.errors import InvalidJobInput
from tests.handlers.test_workflows import ALICE, running

RUNS: Counter[int] = Counter()


class Slow(BaseModel):
    n: int


def add_counting_type(app: agentqueue.App) -> None:
    @app.job("bulk-count")
    async def count(ctx: agentqueue.Context, data: Slow) -> dict[str, Any]:
        RUNS[data.n] += 1
        if data.n == 7 and ctx.attempt == 1:  # the bulk job's first attempt hangs here
            await asyncio.Event().wait()
        return {"n": data.n, "owner": (await ctx.owner()).user_id,  # type: ignore[union-attr]
                "id": ctx.id}


async def test_hundreds_of_items_in_chunks_with_failures_listed(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with running(redis_url, prefix, tmp_path, ("jobs",)) as app:
        items = [{"text": f"item {i}", "fail": i % 50 == 3} for i in range(250)]
        job = await app.enqueue("bulk-operation", {
            "jobType": "wf-upper", "items": items, "chunkSize": 100, "concurrency": 8},
            owner=ALICE)
        result = await job.wait(timeout=60)
        assert (result["total"], result["succeeded"], result["failed"]) == (250, 245, 5)
        assert result["failures"] == [
            {"index": i, "error": f"cannot shout 'item {i}'"} for i in (3, 53, 103, 153, 203)]
        assert result["results"][0] == {"text": "ITEM 0", "words": ["ITEM", "0"]}
        assert result["results"][3] is None
        progress = await job.progress()
        assert progress == {"current": 250, "total": 250, "percent": 100.0,
                            "message": "Processing item 250 of 250"}

        lean = await app.enqueue("bulk-operation", {
            "jobType": "wf-upper", "common": {"fail": True}, "items": [{"text": "a"}],
            "keepResults": False})
        assert await lean.wait(timeout=30) == {
            "jobType": "wf-upper", "total": 1, "succeeded": 0, "failed": 1,
            "failures": [{"index": 0, "error": "cannot shout 'a'"}]}


async def test_a_retried_bulk_job_goes_on_from_its_last_chunk(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    RUNS.clear()
    async with running(redis_url, prefix, tmp_path, ("jobs",), extra=add_counting_type) as app:
        job = await app.enqueue("bulk-operation", {
            "jobType": "bulk-count", "items": [{"n": n} for n in range(12)], "chunkSize": 5},
            owner=ALICE, timeout=1, backoff="fixed", backoff_ms=10)
        result = await job.wait(timeout=60)
        assert await job.attempts() == 2  # the first timed out in item 7's chunk
        assert result["succeeded"] == 12
        # Each item its own id (what handlers key once-only writes by); the bulk job's owner.
        assert result["results"][11] == {"n": 11, "owner": "alice", "id": f"{job.id}:11"}
        # Chunk 0 (items 0-4) ran once; chunk 1 (5-9) again on the retry; chunk 2 once.
        assert [RUNS[n] for n in range(12)] == [1] * 5 + [2] * 5 + [1] * 2


@pytest.mark.parametrize(("data", "expected"), [
    ({"jobType": "nope", "items": [{}]}, "jobType: unknown job type 'nope'"),
    ({"jobType": "bulk-operation", "items": [{}]}, "unknown job type 'bulk-operation'"),
    ({"jobType": "wf-upper", "items": []}, "data.items"),
    ({"jobType": "wf-upper", "items": [{"text": "ok"}, {}, {"text": 5}]},
     "2 item(s) do not fit 'wf-upper': items[1]: data.text: is required; items[2]: data.text"),
    ({"jobType": "wf-upper", "items": [{"text": "x"}], "chunkSize": 0}, "data.chunkSize"),
])
async def test_items_that_can_never_run_are_refused(
    redis_url: str, prefix: str, tmp_path: Path, data: dict[str, Any], expected: str
) -> None:
    async with running(redis_url, prefix, tmp_path, ("jobs",)) as app:
        with pytest.raises(InvalidJobInput) as refused:
            await app.enqueue("bulk-operation", data)
        assert expected in str(refused.value)
