"""The shared counters behind every limit, against a real Redis: a window holds N per duration
whoever counts, all-or-nothing over several windows; pauses block; holds cap running jobs."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from agentqueue.engine.rate_limit import Window, WindowCounters
from tests.support.waiting import eventually


def counters(client: redis.Redis, prefix: str) -> WindowCounters:
    return WindowCounters(client, namespace=f"agentqueue:{prefix}:rl")


async def test_a_window_admits_its_max_then_says_how_long_to_wait(
    client: redis.Redis, prefix: str
) -> None:
    shared = counters(client, prefix)
    window = Window(shared.key("type", "summarize"), max=3, duration_ms=60_000)
    # Ten takers at once, as ten worker slots in several processes would be.
    waits = await asyncio.gather(*(shared.take([window]) for _ in range(10)))
    assert sorted(w == 0 for w in waits).count(True) == 3
    assert all(0 < w <= 60_000 for w in waits if w)


async def test_several_windows_count_all_or_nothing(client: redis.Redis, prefix: str) -> None:
    shared = counters(client, prefix)
    roomy = Window(shared.key("rpm"), max=100, duration_ms=60_000)
    tight = Window(shared.key("tpm"), max=500, duration_ms=60_000, cost=300)
    assert await shared.take([roomy, tight]) == 0
    assert await shared.take([roomy, tight]) > 0  # 600 tokens would pass 500
    assert int(await client.get(roomy.key)) == 1  # the refused take counted nowhere
    await shared.settle(tight.key, 40 - 300)  # the call used 40 tokens, not 300
    assert await shared.take([roomy, tight]) == 0
    assert int(await client.get(tight.key)) == 340


async def test_a_hit_bigger_than_a_window_runs_alone(client: redis.Redis, prefix: str) -> None:
    shared = counters(client, prefix)
    huge = Window(shared.key("tpm"), max=100, duration_ms=60_000, cost=250)
    assert await shared.take([huge]) == 0  # or it could never run
    assert await shared.take([huge]) > 0


async def test_a_pause_blocks_until_it_ends(client: redis.Redis, prefix: str) -> None:
    shared = counters(client, prefix)
    pause = shared.key("model", "openai", "gpt-4o-mini", "paused")
    await shared.pause(pause, 30_000)
    await shared.pause(pause, 10)  # a shorter pause never shortens it
    assert 10 < await shared.take([], [pause]) <= 30_000
    await client.delete(pause)
    assert await shared.take([], [pause]) == 0


async def test_holds_cap_running_members_per_set(client: redis.Redis, prefix: str) -> None:
    shared = counters(client, prefix)
    org, user = shared.key("running", "org", "acme"), shared.key("running", "user", "alice")
    caps = [(org, 2), (user, 5)]
    assert await shared.hold(caps, "q:1", for_ms=60_000) == 0
    assert await shared.hold(caps, "q:2", for_ms=60_000) == 0
    assert await shared.hold(caps, "q:1", for_ms=60_000) == 0  # held already: no new place
    assert await shared.hold(caps, "q:3", for_ms=60_000) == 1  # the org is full
    assert await client.zcard(user) == 2  # nothing counted where the other set refused
    await shared.release([org, user], "q:1")
    assert await shared.hold(caps, "q:3", for_ms=60_000) == 0


async def test_a_hold_lapses_when_its_worker_is_gone(client: redis.Redis, prefix: str) -> None:
    shared = counters(client, prefix)
    org = shared.key("running", "org", "acme")
    assert await shared.hold([(org, 1)], "q:1", for_ms=1) == 0  # its worker died

    async def free() -> bool:
        return await shared.hold([(org, 1)], "q:2", for_ms=60_000) == 0

    await eventually(free, what="the dead worker's hold to lapse")
