"""Concurrent callers' Redis commands share pipelines, and each caller still hears only its own
answers and errors (agentqueue.engine.coalesce)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError, ResponseError

from agentqueue.engine.coalesce import CommandCoalescer, coalescer_for
from agentqueue.engine.connection import connect_for_requests, watch_sends
from agentqueue.engine.health import RedisHealth


async def test_concurrent_callers_share_pipelines_and_each_gets_its_own_answer(
    client: redis.Redis, prefix: str
) -> None:
    coalescer = CommandCoalescer(client)
    keys = [f"{prefix}:n{i}" for i in range(200)]
    answers = await asyncio.gather(*(coalescer.call("INCRBY", key, i)
                                     for i, key in enumerate(keys)))
    assert answers == list(range(200))
    assert await client.get(keys[7]) == "7"
    assert coalescer.pipelines < 200  # shared: not one round trip each


async def test_a_callers_commands_run_in_order_in_one_pipeline(
    client: redis.Redis, prefix: str
) -> None:
    coalescer = CommandCoalescer(client)
    key = f"{prefix}:ordered"
    assert await coalescer.group([("SET", key, "a"), ("APPEND", key, "b"), ("GET", key)]) == [
        True, 2, "ab"]


async def test_a_refused_command_fails_alone(client: redis.Redis, prefix: str) -> None:
    coalescer = CommandCoalescer(client)
    await client.set(f"{prefix}:text", "not a number")
    refused, counted = await asyncio.gather(
        coalescer.call("INCR", f"{prefix}:text"), coalescer.call("INCR", f"{prefix}:count"),
        return_exceptions=True)
    assert isinstance(refused, ResponseError)
    assert counted == 1


async def test_a_script_redis_does_not_have_is_loaded_and_run(
    client: redis.Redis, prefix: str
) -> None:
    # A source Redis has never seen (unique), as after a restart or a failover.
    script = CommandCoalescer(client).script(
        f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await asyncio.gather(*(script(keys=[f"{prefix}:s"], args=[2]) for _ in range(3))) \
        == [2, 4, 6]


async def test_one_client_has_one_coalescer(client: redis.Redis) -> None:
    assert coalescer_for(client) is coalescer_for(client)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_redis_fails_every_caller_and_nothing_counts_as_sent() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    health = RedisHealth(url)
    client = connect_for_requests(url, health=health, timeout_s=0.2)
    coalescer = CommandCoalescer(client)
    try:
        with watch_sends(client) as watch:
            results = await asyncio.gather(*(coalescer.call("INCR", "k") for _ in range(5)),
                                           return_exceptions=True)
        assert all(isinstance(result, ConnectionError) for result in results)
        # No connection was ever handed out: a submission may say "certainly not queued".
        assert not watch.may_have_sent
    finally:
        await client.aclose()
        await health.close()


@pytest.mark.parametrize("commands", [1, 3])
async def test_a_sent_pipeline_counts_as_sent_for_its_callers(
    client: redis.Redis, prefix: str, commands: int
) -> None:
    coalescer = CommandCoalescer(client)
    with watch_sends(client) as watch:
        await coalescer.group([("INCR", f"{prefix}:w")] * commands)
    assert watch.may_have_sent
