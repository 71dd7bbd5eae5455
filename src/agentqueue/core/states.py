"""Job states: the one mapping from core states to each seed's status names.

Core states are BullMQ's (waiting, prioritized, delayed, paused, waiting-children, active,
completed, failed) plus our own `cancelled` (cancelled before it ran). A job's record has a
status of its own (pending, queued, active, completed, failed, cancelled), which reads as a core
state first. Routers only translate through this module:

| core state                  | seed 000  | seed 001  | seed 002  | seed 003   | seed 004  |
|-----------------------------|-----------|-----------|-----------|------------|-----------|
| waiting, prioritized        | waiting   | pending   | queued    | QUEUED     | waiting   |
| delayed                     | delayed   | pending   | queued    | QUEUED     | delayed   |
| paused                      | paused    | pending   | queued    | QUEUED     | paused    |
| active                      | active    | active    | running   | PROCESSING | active    |
| completed                   | completed | completed | completed | SUCCEEDED  | completed |
| failed                      | failed    | failed    | failed    | FAILED     | failed    |
| cancelled (ours)            | failed    | cancelled | failed    | FAILED     | failed    |
| awaiting_approval (ours)    | awaiting_approval (every seed; seed 003: AWAITING_APPROVAL)  |

`awaiting_approval` is a delayed job whose record is `awaiting`: parked until a person approves
a tool call (`core.approvals`). Records: pending and queued read as waiting, awaiting as
awaiting_approval; the others as the state of the same name. One
exception: seed 002 names a task recorded but not yet in Redis `pending` (its lifecycle is
pending → queued → running → completed | failed), as our record's own status does.

A job waiting with a priority is in BullMQ's `prioritized` set; every seed calls it waiting
(and since every job agentqueue queues has a priority, that is where its waiting jobs are).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from agentqueue.records.models import STATUSES as RECORD_STATUSES

Seed000Status = Literal["waiting", "delayed", "paused", "active", "awaiting_approval",
                        "completed", "failed"]
Seed001Status = Literal["pending", "active", "awaiting_approval", "completed", "failed",
                        "cancelled"]
Seed002Status = Literal["pending", "queued", "running", "awaiting_approval", "completed",
                        "failed"]
Seed003Status = Literal["QUEUED", "PROCESSING", "AWAITING_APPROVAL", "SUCCEEDED", "FAILED"]
Seed = Literal["seed000", "seed001", "seed002", "seed003", "seed004"]


@dataclass(frozen=True)
class SeedNames:
    """What each seed calls one core state."""

    seed000: Seed000Status
    seed001: Seed001Status
    seed002: Seed002Status
    seed003: Seed003Status
    seed004: str  # BullMQ's own names, as seed 004's `job.getState()` gives them


_WAITING = SeedNames("waiting", "pending", "queued", "QUEUED", "waiting")
_BY_STATE: dict[str, SeedNames] = {
    "waiting": _WAITING,
    "prioritized": _WAITING,
    "waiting-children": SeedNames("waiting", "pending", "queued", "QUEUED", "waiting-children"),
    "delayed": SeedNames("delayed", "pending", "queued", "QUEUED", "delayed"),
    "paused": SeedNames("paused", "pending", "queued", "QUEUED", "paused"),
    "active": SeedNames("active", "active", "running", "PROCESSING", "active"),
    "awaiting_approval": SeedNames("awaiting_approval", "awaiting_approval", "awaiting_approval",
                                   "AWAITING_APPROVAL", "awaiting_approval"),
    "completed": SeedNames("completed", "completed", "completed", "SUCCEEDED", "completed"),
    "failed": SeedNames("failed", "failed", "failed", "FAILED", "failed"),
    "cancelled": SeedNames("failed", "cancelled", "failed", "FAILED", "failed"),
}
# A state BullMQ did not name (`unknown`: the job vanished while it was read).
_UNKNOWN = SeedNames("waiting", "pending", "queued", "QUEUED", "unknown")

# Record status -> core state. A record does not know delayed or paused: only Redis does.
_RECORD_STATE: dict[str, str] = {
    "pending": "waiting", "queued": "waiting", "active": "active",
    "awaiting": "awaiting_approval", "completed": "completed",
    "failed": "failed", "cancelled": "cancelled",
}


def state_of_record(status: str) -> str:
    """The core state a record's status stands for."""
    return _RECORD_STATE.get(status, status)


def of_state(state: str) -> SeedNames:
    """Each seed's name for a core state (a job Redis holds)."""
    return _BY_STATE.get(state, _UNKNOWN)


def of_record(status: str) -> SeedNames:
    """Each seed's name for a record's status (a job read from its record)."""
    names = of_state(state_of_record(status))
    return replace(names, seed002="pending") if status == "pending" else names


def shown(state: str) -> str:
    """A core state as BullMQ users know it, for messages: prioritized jobs are waiting."""
    return "waiting" if state == "prioritized" else state


def states_named(seed: Seed, name: str) -> list[str]:
    """The core states a seed's status name covers (a status filter read from Redis)."""
    return [state for state, names in _BY_STATE.items() if getattr(names, seed) == name]


def names(seed: Seed) -> list[str]:
    """A seed's status names, in the order of the table."""
    return list(dict.fromkeys(getattr(n, seed) for n in _BY_STATE.values()))


def tally(seed: Seed, by_record_status: dict[str, int]) -> dict[str, int]:
    """Record counts by status as a seed's counts by its status names (zeros included)."""
    counts = dict.fromkeys(names(seed), 0)
    for status, n in by_record_status.items():
        counts[getattr(of_record(status), seed)] += n
    return counts


def record_statuses_named(seed: Seed, name: str) -> list[str]:
    """The record statuses a seed's status name covers (a status filter read from records)."""
    return [status for status in RECORD_STATUSES if getattr(of_record(status), seed) == name]
