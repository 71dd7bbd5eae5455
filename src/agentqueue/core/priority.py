"""Job priority: the one place that converts each API's priority to BullMQ's and back.

BullMQ runs lower numbers first: 1 is the most urgent, 2,097,152 (2^21) the least. It also
serves its plain wait list *before* its prioritized set, so a job added without a priority
overtakes every prioritized one: every job agentqueue queues therefore gets one, `NORMAL` when
its API gave none. Records store the BullMQ priority the job was queued with; each API converts
on the way in and back on the way out, so what a caller sent is what it reads back.

| API                          | its values                       | BullMQ priority          |
|------------------------------|----------------------------------|--------------------------|
| none given (any API)         | -                                | 1000 (`NORMAL`)          |
| seed 000 `metadata.priority` | high / normal / low              | 500 / 1000 / 1500        |
| seed 001 `priority`          | 0-100, higher first, default 0   | 1000 - 5p (1000 ... 500) |
| seed 002 `priority`          | 0-10, higher first, default 5    | 1000 - 100(p - 5)        |
| BullMQ's raw option          | 1-2,097,152, lower first         | unchanged                |

The scales meet: seed 000's high, seed 001's 100 and seed 002's 10 are all 500; normal, 0 and 5
are all 1000. A raw BullMQ priority below 500 beats every seed's highest. Seeds 003 and 004's
HTTP APIs have no priority of their own (seed 004's `queue.add` option is BullMQ's raw one).

Converting back from a priority another API chose gives the nearest value on the caller's
scale, clamped to its range (a raw 1 reads as seed 001's 100).
"""

from __future__ import annotations

from typing import Literal

MIN_BULLMQ = 1
MAX_BULLMQ = 2**21  # BullMQ's own upper bound
NORMAL = 1000

Level = Literal["high", "normal", "low"]
_LEVELS: dict[str, int] = {"high": 500, "normal": NORMAL, "low": 1500}

SEED001_MIN, SEED001_MAX, SEED001_DEFAULT = 0, 100, 0
_SEED001_STEP = 5
SEED002_MIN, SEED002_MAX, SEED002_DEFAULT = 0, 10, 5
_SEED002_STEP = 100


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _check(value: int, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def from_bullmq(value: int | None) -> int:
    """A raw BullMQ priority (lower runs first) as queued; `None` gives `NORMAL`."""
    if value is None:
        return NORMAL
    return _check(value, MIN_BULLMQ, MAX_BULLMQ, "priority")


def stored(value: int | None) -> int:
    """The BullMQ priority of a record or job: 0 or none (queued before every job had one)
    reads as `NORMAL`."""
    return NORMAL if not value else _clamp(value, MIN_BULLMQ, MAX_BULLMQ)


def from_level(level: Level | None) -> int:
    """Seed 000's `metadata.priority` (high, normal, low)."""
    return NORMAL if level is None else _LEVELS[level]


def to_level(value: int | None) -> Level:
    """The seed 000 level nearest a BullMQ priority (ties go to the more urgent)."""
    bull = stored(value)
    levels: tuple[Level, ...] = ("high", "normal", "low")
    return min(levels, key=lambda name: (abs(_LEVELS[name] - bull), _LEVELS[name]))


def from_seed001(value: int | None) -> int:
    """Seed 001's `priority`: 0–100, higher runs first, 0 (the default) is normal."""
    if value is None:
        return NORMAL
    p = _check(value, SEED001_MIN, SEED001_MAX, "priority")
    return NORMAL - _SEED001_STEP * p


def to_seed001(value: int | None) -> int:
    return _clamp(round((NORMAL - stored(value)) / _SEED001_STEP), SEED001_MIN, SEED001_MAX)


def from_seed002(value: int | None) -> int:
    """Seed 002's `priority`: 0–10, higher is more urgent, 5 (the default) is normal."""
    if value is None:
        return NORMAL
    p = _check(value, SEED002_MIN, SEED002_MAX, "priority")
    return NORMAL - _SEED002_STEP * (p - SEED002_DEFAULT)


def to_seed002(value: int | None) -> int:
    raw = SEED002_DEFAULT - (stored(value) - NORMAL) / _SEED002_STEP
    return _clamp(round(raw), SEED002_MIN, SEED002_MAX)
