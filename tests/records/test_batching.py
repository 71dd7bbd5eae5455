"""The group-commit batcher on its own: no item is ever left waiting for a flush."""

from __future__ import annotations

import asyncio

import pytest

from agentqueue.records.batching import Batcher


@pytest.mark.parametrize("max_flushes", [1, 4])
async def test_an_item_posted_as_the_last_flush_ends_is_flushed(max_flushes: int) -> None:
    loop = asyncio.get_running_loop()
    posted: asyncio.Future[asyncio.Future[int]] = loop.create_future()
    batcher: Batcher[int, int]

    async def flush(items: list[int]) -> list[int]:
        if items == [1]:
            # Runs after this flush's task has finished, before anything else is scheduled.
            loop.call_soon(lambda: posted.set_result(batcher.post(2)))
        return items

    batcher = Batcher(flush, max_flushes=max_flushes)
    assert await batcher.submit(1) == 1
    second = await posted
    # A guard against hanging the suite, not a timing: the item must be flushed at all.
    assert await asyncio.wait_for(second, 10) == 2
