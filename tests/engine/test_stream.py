"""The shared reader of a Redis stream: every follower gets every entry after the point it chose,
in order and once, whenever it joins."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from agentqueue.engine.stream import StreamReader


async def test_a_follower_joining_behind_the_reader_gets_what_it_missed_in_order(
    client: redis.Redis, prefix: str
) -> None:
    key = f"{prefix}:q:events"
    ids = [await client.xadd(key, {"n": str(n)}) for n in range(1, 4)]
    reader = StreamReader(client, key)
    async with reader.subscribe("0-0") as first:
        assert [(await first.next(10))[1]["n"] for _ in range(3)] == ["1", "2", "3"]
        ids += [await client.xadd(key, {"n": str(n)}) for n in (4, 5)]
        assert [(await first.next(10))[1]["n"] for _ in range(2)] == ["4", "5"]
        assert reader.position == ids[-1]  # the reader has handed out entry 5
        async with reader.subscribe(ids[0]) as late:  # chose to follow from after entry 1
            await client.xadd(key, {"n": "6"})
            assert [(await late.next(10))[1]["n"] for _ in range(5)] == ["2", "3", "4", "5", "6"]
            assert (await first.next(10))[1]["n"] == "6"
            with pytest.raises(TimeoutError):
                await late.next(0.05)  # nothing twice
    await reader.close()


async def test_a_follower_ahead_of_the_reader_gets_only_later_entries(
    client: redis.Redis, prefix: str
) -> None:
    key = f"{prefix}:q:events"
    ids = [await client.xadd(key, {"n": str(n)}) for n in range(1, 4)]
    reader = StreamReader(client, key)
    async with reader.subscribe("0-0") as first, reader.subscribe(ids[1]) as ahead:
        assert (await ahead.next(10))[1]["n"] == "3"
        assert [(await first.next(10))[1]["n"] for _ in range(3)] == ["1", "2", "3"]
    assert not reader.subscriptions
    await reader.close()
