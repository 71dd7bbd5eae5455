"""Every API's priority converts to BullMQ's one way, and back to what the caller sent."""

from __future__ import annotations

import pytest

from agentqueue.core import priority as priorities


def test_every_scale_round_trips() -> None:
    for p in range(priorities.SEED001_MIN, priorities.SEED001_MAX + 1):
        assert priorities.to_seed001(priorities.from_seed001(p)) == p
    for p in range(priorities.SEED002_MIN, priorities.SEED002_MAX + 1):
        assert priorities.to_seed002(priorities.from_seed002(p)) == p
    for level in ("high", "normal", "low"):
        assert priorities.to_level(priorities.from_level(level)) == level  # type: ignore[arg-type]


def test_higher_seed_priority_means_a_lower_bullmq_number() -> None:
    assert priorities.from_seed001(100) < priorities.from_seed001(1) < priorities.from_seed001(0)
    assert priorities.from_seed002(10) < priorities.from_seed002(5) < priorities.from_seed002(0)
    assert (priorities.from_level("high") < priorities.from_level("normal")
            < priorities.from_level("low"))


def test_the_scales_meet_at_normal_and_at_their_top() -> None:
    normal = {priorities.from_bullmq(None), priorities.from_level(None),
              priorities.from_level("normal"), priorities.from_seed001(None),
              priorities.from_seed001(0), priorities.from_seed002(None),
              priorities.from_seed002(5)}
    assert normal == {priorities.NORMAL}
    assert (priorities.from_level("high") == priorities.from_seed001(100)
            == priorities.from_seed002(10))


def test_a_priority_from_another_scale_reads_as_the_nearest_in_range() -> None:
    assert priorities.to_seed001(1) == 100  # BullMQ's most urgent
    assert priorities.to_seed001(priorities.from_level("low")) == 0
    assert priorities.to_seed002(priorities.MAX_BULLMQ) == 0
    assert priorities.to_level(priorities.from_seed002(7)) == "normal"
    assert priorities.to_level(priorities.from_seed002(9)) == "high"
    assert priorities.to_seed001(0) == 0  # a record queued before every job had a priority


def test_raw_bullmq_priorities_pass_unchanged_within_bullmq_range() -> None:
    assert priorities.from_bullmq(1) == 1
    assert priorities.from_bullmq(2**21) == 2**21
    assert priorities.stored(0) == priorities.NORMAL


@pytest.mark.parametrize(("convert", "value"), [
    (priorities.from_bullmq, 0), (priorities.from_bullmq, 2**21 + 1),
    (priorities.from_seed001, 101), (priorities.from_seed001, -1),
    (priorities.from_seed002, 11), (priorities.from_bullmq, True),
])
def test_out_of_range_priorities_are_refused_with_the_range(convert, value: int) -> None:
    with pytest.raises(ValueError, match="priority must be an integer from"):
        convert(value)
