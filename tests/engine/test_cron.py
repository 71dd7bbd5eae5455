"""Cron next-run rules around daylight-saving changes (engine/cron.py), with a controllable
clock: each call is given the moment it computes from.

America/New_York, 2026: clocks spring forward at 02:00 on March 8 (02:00-02:59 does not exist)
and fall back at 02:00 on November 1 (01:00-01:59 happens twice).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from bullmq.job_scheduler import default_repeat_strategy

from agentqueue.engine.cron import InvalidSchedule, check_cron, next_run_ms, repeat_strategy

NY = "America/New_York"
NEW_YORK = ZoneInfo(NY)


def ms(*parts: int, fold: int = 0) -> int:
    return int(datetime(*parts, tzinfo=NEW_YORK).replace(fold=fold).timestamp() * 1000)  # type: ignore[misc]


def local(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, NEW_YORK).isoformat()


def runs_between(pattern: str, start_ms: int, end_ms: int) -> list[str]:
    """Every run from `start_ms` to `end_ms`, each computed from the previous one, as a
    scheduler does when each run queues the next."""
    out, clock = [], start_ms
    while True:
        nxt = next_run_ms(pattern, NY, clock)
        assert nxt is not None
        if nxt > end_ms:
            return out
        out.append(local(nxt))
        clock = nxt


def test_0130_on_spring_forward_day_runs_once() -> None:
    assert runs_between("30 1 * * *", ms(2026, 3, 7, 12), ms(2026, 3, 9, 12)) == [
        "2026-03-08T01:30:00-05:00", "2026-03-09T01:30:00-04:00"]


def test_a_time_in_the_skipped_hour_runs_once_when_the_clocks_jump() -> None:
    # 02:30 does not exist on March 8: the run happens at 03:00 EDT, not skipped, not twice.
    assert runs_between("30 2 * * *", ms(2026, 3, 7, 12), ms(2026, 3, 9, 12)) == [
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]


def test_0130_on_fall_back_day_runs_once_not_twice() -> None:
    assert runs_between("30 1 * * *", ms(2026, 10, 31, 12), ms(2026, 11, 2, 12)) == [
        "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_every_half_hour_follows_real_time_through_both_changes() -> None:
    assert runs_between("*/30 * * * *", ms(2026, 11, 1, 0, 10), ms(2026, 11, 1, 2, 10)) == [
        "2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]
    assert runs_between("*/30 * * * *", ms(2026, 3, 8, 1, 10), ms(2026, 3, 8, 3, 40)) == [
        "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"]


def test_the_package_strategy_gets_the_same_days_wrong() -> None:
    # Why agentqueue has its own: bullmq's default hands croniter a zoneinfo datetime.
    after_spring = default_repeat_strategy(ms(2026, 3, 8, 1, 30), {"pattern": "30 1 * * *",
                                                                   "tz": NY})
    assert after_spring is not None and local(after_spring) != "2026-03-09T01:30:00-04:00"
    ours = repeat_strategy(ms(2026, 3, 8, 1, 30), {"pattern": "30 1 * * *", "tz": NY})
    assert ours is not None and local(ours) == "2026-03-09T01:30:00-04:00"


def test_seed_002_monday_nine_in_new_york() -> None:
    assert runs_between("0 9 * * 1", ms(2026, 3, 1), ms(2026, 3, 17)) == [
        "2026-03-02T09:00:00-05:00", "2026-03-09T09:00:00-04:00", "2026-03-16T09:00:00-04:00"]


def test_start_and_end_dates_bound_the_runs() -> None:
    opts = {"pattern": "0 9 * * *", "tz": NY, "startDate": ms(2026, 5, 1, 9),
            "endDate": ms(2026, 5, 2, 9)}
    first = repeat_strategy(ms(2026, 1, 1), opts)
    assert first is not None and local(first) == "2026-05-01T09:00:00-04:00"
    second = repeat_strategy(first, opts)
    assert second is not None and local(second) == "2026-05-02T09:00:00-04:00"
    assert repeat_strategy(second, opts) is None


@pytest.mark.parametrize(("pattern", "tz", "says"), [
    ("0 9 * *", None, "has 4 fields"),
    ("61 * * * *", None, "not a valid cron expression"),
    ("0 9 * * 1", "Mars/Olympus", "unknown time zone"),
    ("", None, "is required"),
    ("0 0 30 2 *", None, "never matches"),
])
def test_bad_patterns_say_what_is_wrong(pattern: str, tz: str | None, says: str) -> None:
    with pytest.raises(InvalidSchedule, match=says):
        check_cron(pattern, tz)


def test_every_minute_goes_on_minute_by_minute_of_real_time() -> None:
    # 01:59 EDT is followed by 01:00 EST one minute later, and 01:59 EST by 02:00 EST.
    assert runs_between("* * * * *", ms(2026, 11, 1, 1, 58), ms(2026, 11, 1, 1, 1, fold=1)) == [
        "2026-11-01T01:59:00-04:00", "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:01:00-05:00"]
    assert runs_between("* * * * *", ms(2026, 3, 8, 1, 58), ms(2026, 3, 8, 3, 1)) == [
        "2026-03-08T01:59:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:01:00-04:00"]
