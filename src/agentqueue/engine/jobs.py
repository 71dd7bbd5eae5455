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
