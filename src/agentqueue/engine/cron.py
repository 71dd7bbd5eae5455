"""When a cron schedule runs next, in an IANA time zone, with daylight-saving rules that neither
skip nor double a run.

Why not the bullmq package's `default_repeat_strategy`: it hands croniter a `zoneinfo` datetime,
and croniter 2.x does its arithmetic on the UTC offset it started with, so around a change of
clocks it answers wrong instants (for `30 1 * * *` in America/New_York after the spring-forward
day it answers 00:30; after the fall-back day, 02:30). Here croniter only walks wall-clock
(naive) times, which it does right, and this module turns each wall time into an instant:

- a wall time that does not exist (in the hour the clocks skip, e.g. 02:30 on a spring-forward
  day in New York) runs at the moment the clocks jump (03:00 local), once: ISC/Vixie cron's
  rule, what cron users expect (the run is late, not lost);
- a wall time that exists twice (01:30 on a fall-back day) runs once, at its first occurrence,
  when the pattern names its hours; a pattern whose hour field is `*` or `*/n` (every N minutes
  of every hour) runs at both, since those are different instants half an hour of real time
  apart (again cron's rule).

`next_run_ms(pattern, tz, after_ms)` is a pure function of its arguments: tests drive it with a
controllable clock. 6-field patterns have seconds first, as cron-parser (Node BullMQ) reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

__all__ = ["InvalidSchedule", "check_cron", "next_run_ms", "next_runs_ms", "repeat_strategy",
           "zone"]

# Look back this far in wall time, so the second pass of a repeated hour is not missed.
_LOOKBACK = timedelta(hours=3)
# Candidate wall times tried before giving up (a pattern that only matches Feb 30, say).
_MAX_CANDIDATES = 100_000


class InvalidSchedule(ValueError):
    """A cron pattern, time zone or interval that cannot be scheduled (the message says why)."""


def zone(tz: str | None) -> ZoneInfo:
    if not tz:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidSchedule(f"tz: unknown time zone {tz!r} (an IANA name such as "
                              "'America/New_York' or 'UTC')") from None


def check_cron(pattern: str, tz: str | None = None) -> None:
    """Raise `InvalidSchedule` unless `pattern` is a 5- or 6-field cron expression with a next
    run, in time zone `tz`."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidSchedule("cron: a cron expression such as '0 9 * * 1' is required")
    fields = pattern.split()
    if len(fields) not in (5, 6):
        raise InvalidSchedule(f"cron: {pattern!r} has {len(fields)} fields; a cron expression "
                              "has 5 (minute hour day month weekday) or 6 (seconds first)")
    zone(tz)
    try:
        croniter(pattern, datetime(2000, 1, 1), second_at_beginning=True)
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise InvalidSchedule(f"cron: {pattern!r} is not a valid cron expression ({exc})") from None
    if next_run_ms(pattern, tz, 0) is None:
        raise InvalidSchedule(f"cron: {pattern!r} never matches a date")


def next_run_ms(pattern: str, tz: str | None, after_ms: int) -> int | None:
    """The first run strictly after `after_ms` (epoch ms) of `pattern` in `tz`; None if none."""
    tzinfo = zone(tz)
    after = datetime.fromtimestamp(after_ms / 1000, UTC)
    wall = after.astimezone(tzinfo).replace(tzinfo=None)
    offsets = {(after + shift).astimezone(tzinfo).utcoffset()
               for shift in (-_LOOKBACK, timedelta(0), _LOOKBACK)}
    if len(offsets) > 1:
        # The clocks change around now: a wall time before now's may still come (its second
        # pass), so look from a little earlier.
        wall -= _LOOKBACK
    both_folds = _hour_is_wildcard(pattern)
    best: datetime | None = None
    horizon: datetime | None = None  # past this wall time no candidate can run earlier
    try:
        walk = croniter(pattern, wall, second_at_beginning=True)
        for _ in range(_MAX_CANDIDATES):
            candidate: datetime = walk.get_next(datetime)
            if horizon is not None and candidate > horizon:
                break
            for index, instant in enumerate(_instants(candidate, tzinfo, both_folds)):
                if instant > after and (best is None or instant < best):
                    best = instant
                    if index == 0:  # a first pass: no later wall time runs earlier
                        return int(best.timestamp() * 1000)
                    # A second pass: a later wall time's first pass may come before it.
                    horizon = candidate + _LOOKBACK
    except (CroniterError, ValueError):  # croniter gives up on patterns with no next date
        pass
    return None if best is None else int(best.timestamp() * 1000)


def next_runs_ms(pattern: str, tz: str | None, after_ms: int, count: int) -> list[int]:
    """The next `count` runs after `after_ms`."""
    runs: list[int] = []
    at = after_ms
    for _ in range(count):
        nxt = next_run_ms(pattern, tz, at)
        if nxt is None:
            break
        runs.append(nxt)
        at = nxt
    return runs


def _instants(wall: datetime, tzinfo: ZoneInfo, both_folds: bool) -> list[datetime]:
    """The instants at which local wall time `wall` runs (see the module's rules)."""
    first = wall.replace(tzinfo=tzinfo, fold=0)
    second = wall.replace(tzinfo=tzinfo, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    if _exists(first, wall):  # an ambiguous time: the clocks went back over it
        instants = [first.astimezone(UTC)]
        if both_folds:
            instants.append(second.astimezone(UTC))
        return instants
    return [_jump(second.astimezone(UTC), first.astimezone(UTC), tzinfo)]


def _exists(local: datetime, wall: datetime) -> bool:
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == wall


def _jump(low: datetime, high: datetime, tzinfo: ZoneInfo) -> datetime:
    """The instant, between `low` and `high`, at which the clocks jumped forward (the first
    instant with the later offset), to the second."""
    target = high.astimezone(tzinfo).utcoffset()
    while (high - low) > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tzinfo).utcoffset() == target:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def _hour_is_wildcard(pattern: str) -> bool:
    fields = pattern.split()
    hour = fields[2] if len(fields) == 6 else fields[1]
    return hour.startswith("*")


def repeat_strategy(millis: int, opts: dict[str, Any]) -> int | None:
    """The bullmq package's repeat strategy (`JobScheduler(queue, repeat_strategy=...)`), with
    the rules above: the next run of `opts["pattern"]` in `opts["tz"]` after `millis`, not
    before `startDate`, and None past `endDate` (the package checks the end date against the
    clock only, so it would queue one run after it)."""
    pattern = opts.get("pattern")
    if not pattern:
        return None
    if opts.get("immediately"):
        return millis
    start = _millis(opts.get("startDate"))
    base = millis
    if start is not None and start > base:
        base = start - 1  # a run at the start date itself counts
    nxt = next_run_ms(pattern, opts.get("tz"), base)
    end = _millis(opts.get("endDate"))
    if nxt is None or (end is not None and nxt > end):
        return None
    return nxt


def _millis(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
