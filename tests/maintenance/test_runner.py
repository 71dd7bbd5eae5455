"""The maintenance runner: however many processes run it, one at a time does each duty, and
another takes a duty over when its holder stops or dies."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from agentqueue.maintenance.runner import Duty, MaintenanceRunner, lease_key
from tests.support.waiting import eventually


class Observed:
    """What a duty sees of its passes: who ran them, and how many ran at once."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.passes: Counter[str] = Counter()
        self.running = 0
        self.most_at_once = 0

    def duty(self, runner: str, name: str = "count") -> Duty:
        async def one_pass() -> None:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            try:
                # A pass that takes a few round trips to Redis, as a real one does: time for
                # another runner's pass to overlap it, if the lease let one.
                for _ in range(5):
                    await self.client.incr(f"{self.prefix}:{name}:work")
                self.passes[runner] += 1
            finally:
                self.running -= 1

        return Duty(name, 0.01, one_pass)


@pytest.fixture
async def runners(
    client: redis.Redis, prefix: str
) -> AsyncIterator[tuple[Observed, dict[str, MaintenanceRunner]]]:
    seen = Observed(client, prefix)
    started = {
        name: MaintenanceRunner(client, [seen.duty(name)], prefix=prefix, lease_s=1.0)
        for name in ("a", "b")
    }
    for runner in started.values():
        runner.start()
    yield seen, started
    for runner in started.values():
        await runner.stop()


async def test_one_runner_at_a_time_does_a_duty(
    runners: tuple[Observed, dict[str, MaintenanceRunner]],
) -> None:
    seen, _ = runners

    async def many_passes() -> bool:
        return sum(seen.passes.values()) >= 30

    await eventually(many_passes, what="30 passes of the duty")
    assert seen.most_at_once == 1
    assert len(seen.passes) == 1  # the holder keeps the duty between passes


async def test_when_the_holder_stops_another_runner_takes_the_duty_over(
    runners: tuple[Observed, dict[str, MaintenanceRunner]],
) -> None:
    seen, started = runners

    async def holder() -> str:
        return next(iter(seen.passes), "")

    first = await eventually(holder, what="a runner to do the duty")
    await started[first].stop()
    done_by_first = seen.passes[first]
    other = "b" if first == "a" else "a"

    async def taken_over() -> bool:
        return seen.passes[other] >= 3

    await eventually(taken_over, what=f"runner {other} to take the duty over")
    assert seen.passes[first] == done_by_first
    assert seen.most_at_once == 1


async def test_a_dead_holders_lease_is_taken_over_once_it_runs_out(
    client: redis.Redis, prefix: str
) -> None:
    # The lease a process left behind when it was killed: someone else's token, running out.
    key = lease_key(prefix, "count")
    await client.set(key, "token-of-a-dead-process", px=500)
    holders: list[object] = []

    async def one_pass() -> None:
        holders.append(await client.get(key))

    runner = MaintenanceRunner(client, [Duty("count", 0.01, one_pass)], prefix=prefix,
                               lease_s=1.0)
    runner.start()
    try:
        async def passes() -> bool:
            return len(holders) >= 3

        await eventually(passes, what="the runner to take the lease over")
    finally:
        await runner.stop()
    # Every pass ran under this runner's lease, none while the dead process's was in force.
    assert "token-of-a-dead-process" not in holders and None not in holders
    assert await client.get(key) is None  # given up on stop


async def test_each_duty_has_its_own_lease(client: redis.Redis, prefix: str) -> None:
    seen = Observed(client, prefix)
    first = MaintenanceRunner(client, [seen.duty("a", "one")], prefix=prefix, lease_s=1.0)
    second = MaintenanceRunner(client, [seen.duty("b", "two")], prefix=prefix, lease_s=1.0)
    first.start()
    second.start()
    try:
        async def both() -> bool:
            return seen.passes["a"] >= 3 and seen.passes["b"] >= 3

        await eventually(both, what="both duties to run")
    finally:
        await first.stop()
        await second.stop()
