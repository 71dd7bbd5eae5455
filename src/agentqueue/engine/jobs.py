"""A read-only snapshot of one job, independent of the bullmq `Job` class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bullmq import Job

# Core states: BullMQ's own, plus "cancelled" (ours) for jobs cancelled before they ran.
JobState = Literal[
    "waiting", "prioritized", "delayed", "paused", "active", "completed", "failed",
    "waiting-children", "cancelled", "unknown",
]
PENDING_STATES: frozenset[str] = frozenset({"waiting", "prioritized", "delayed", "paused"})
FINISHED_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

# The keys BullMQ keeps beside the job hashes under `<prefix>:<queue>:`. A job's key is
# `<prefix>:<queue>:<id>`, so an id that names one of these would read or write the queue's own
# state (`meta` is the queue's settings, `id` its counter) as if it were a job.
QUEUE_KEYS: frozenset[str] = frozenset({
    "id", "meta", "events", "wait", "waiting", "paused", "active", "prioritized", "priority",
    "delayed", "completed", "failed", "stalled", "stalled-check", "limiter", "marker", "pc",
    "de", "repeat", "metrics", "waiting-children", "lock",
})
MAX_JOB_ID_CHARS = 512


def is_job_id(value: str) -> bool:
    """Whether `value` can be the id of a job, as opposed to another BullMQ key or garbage.

    Valid: BullMQ's counter ids (1, 2, 3…) and custom ids as Node BullMQ accepts them: no `:`
    except in its three-part form (`repeat:<key>:<millis>`, repeatable jobs), printable, and
    not the name of a queue key (`meta`, `wait`, `events`…). Per-job keys such as `1:logs`
    or `1:lock` have two parts and so are never ids.
    """
    if not value or len(value) > MAX_JOB_ID_CHARS or not value.isprintable():
        return False
    parts = value.split(":")
    if len(parts) == 1:
        return value not in QUEUE_KEYS
    if len(parts) != 3 or not all(parts):
        return False
    # `metrics:completed:data` and the like are queue keys; `repeat:…:…` are jobs.
    return parts[0] == "repeat" or parts[0] not in QUEUE_KEYS


def is_custom_job_id(value: str) -> bool:
    """Whether `value` can be a job id chosen by a caller: a job id that is neither a number
    (BullMQ's counter hands those out, and Node BullMQ refuses them as custom ids) nor of the
    `repeat:…` form of repeatable jobs."""
    return is_job_id(value) and ":" not in value and not value.isdigit()


@dataclass(frozen=True)
class JobView:
    id: str
    name: str
    state: str
    data: Any
    progress: Any = 0
    result: Any = None
    failed_reason: str | None = None
    attempts_made: int = 0
    max_attempts: int = 1
    priority: int = 0
    delay_ms: int = 0
    created_at_ms: int | None = None
    processed_at_ms: int | None = None
    finished_at_ms: int | None = None
    stacktrace: list[str] = field(default_factory=list)

    @classmethod
    def from_job(cls, job: Job, state: str) -> JobView:
        return cls(
            id=str(job.id),
            name=job.name,
            state=state,
            data=job.data,
            progress=job.progress,
            result=job.returnvalue,
            failed_reason=job.failedReason or None,
            attempts_made=int(job.attemptsMade or 0),
            max_attempts=int(job.opts.get("attempts") or 1),
            priority=int(job.priority or 0),
            delay_ms=int(job.delay or 0),
            created_at_ms=job.timestamp or None,
            processed_at_ms=job.processedOn or None,
            finished_at_ms=job.finishedOn or None,
            stacktrace=list(job.stacktrace or []),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "state": self.state, "data": self.data,
            "progress": self.progress, "result": self.result,
            "failed_reason": self.failed_reason, "attempts_made": self.attempts_made,
            "max_attempts": self.max_attempts, "priority": self.priority,
            "delay_ms": self.delay_ms, "created_at_ms": self.created_at_ms,
            "processed_at_ms": self.processed_at_ms, "finished_at_ms": self.finished_at_ms,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> JobView:
        return cls(**raw)
