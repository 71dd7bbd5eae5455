"""Dead letters (seed 002): jobs that failed for good, listed with their error and stack, and
replayed one by one or in bulk, with new data if given.

A dead letter is a failed job, not a copy in a queue of its own: BullMQ's failed set already
keeps the job with its error, stack trace and attempts, Node dashboards show it there, and
BullMQ's own retry runs it again under the same id. A separate dead-letter queue would hold a
second copy to keep in step (and a window where a job is in both, or neither). The job's record
keeps it a dead letter after Redis retention (`keep_failed`) drops the job; its stack trace is
Redis's, so it reads as empty once the job is dropped.

Which failed jobs: every job whose record is `failed`, i.e. that will not run again by itself:
those that spent all their attempts, and those that failed permanently before (a permanent
error spends no further attempts). Cancelled jobs are not dead letters. Viewers see their own
dead letters (admins all), as they see jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentqueue.core.actions import JobBackends, retry_job
from agentqueue.core.errors import JobConflict, JobNotFound
from agentqueue.core.lookup import FoundJob, Viewer, find_job, scope_of
from agentqueue.engine.jobs import JobView
from agentqueue.records.views import JobRecordView

DEAD = "failed"


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    job_id: str
    type: str
    data: Any
    error: str | None
    stacktrace: list[str]  # newest attempt last, as BullMQ keeps it; [] once Redis dropped it
    attempts_made: int
    max_attempts: int
    user_id: str
    org_id: str | None
    created_at: datetime
    failed_at: datetime | None

    @property
    def ref(self) -> str:
        """`<queue>:<job id>`, as seed 001's API names jobs."""
        return f"{self.queue}:{self.job_id}"


def _letter(record: JobRecordView, stacktrace: list[str],
            live: JobView | None = None) -> DeadLetter:
    """The dead letter as its record says, or as Redis says while the record catches up."""
    ahead = live is not None and live.state == DEAD and record.status != DEAD
    failed_at = record.finished_at
    if ahead and live is not None and live.finished_at_ms:
        failed_at = datetime.fromtimestamp(live.finished_at_ms / 1000, UTC)
    return DeadLetter(
        queue=record.queue, job_id=record.job_id, type=record.type,
        data=live.data if ahead and live is not None else record.data,
        error=live.failed_reason if ahead and live is not None else record.error,
        stacktrace=stacktrace,
        attempts_made=live.attempts_made if ahead and live is not None else record.attempts_made,
        max_attempts=record.max_attempts, user_id=record.user_id, org_id=record.org_id,
        created_at=record.created_at, failed_at=failed_at)


async def _stack(stores: JobBackends, record: JobRecordView) -> list[str]:
    queue = stores.queues.get(record.queue)
    live = await queue.get(record.job_id) if queue is not None else None
    return list(live.stacktrace) if live is not None and live.state == DEAD else []


async def list_dead_letters(
    stores: JobBackends, viewer: Viewer, *, queue: str | None = None,
    job_type: str | None = None, limit: int = 20, offset: int = 0,
) -> tuple[list[DeadLetter], int]:
    """A page of the dead letters `viewer` may see, newest first, and how many there are."""
    records, total = await stores.records.list_jobs(
        queues=[queue] if queue else None, types=[job_type] if job_type else None,
        statuses=[DEAD], limit=limit, offset=offset, **scope_of(viewer))
    return [_letter(r, await _stack(stores, r)) for r in records], total


async def _found(stores: JobBackends, viewer: Viewer, queue: str, job_id: str) -> FoundJob:
    """The dead letter's job; `JobNotFound` if it is none (or not the viewer's)."""
    if queue not in stores.queues:
        raise JobNotFound(job_id)
    found = await find_job(stores, viewer, queue, job_id)
    # Redis's failed state counts too: the record follows the worker's write a moment later,
    # and a replay right after `wait()` raised `JobFailed` must not miss it.
    live_dead = found.live is not None and found.live.state == DEAD
    if found.record is None or (found.record.status != DEAD and not live_dead):
        raise JobNotFound(job_id)
    return found


async def get_dead_letter(stores: JobBackends, viewer: Viewer, queue: str,
                          job_id: str) -> DeadLetter:
    found = await _found(stores, viewer, queue, job_id)
    assert found.record is not None
    stack = list(found.live.stacktrace) if found.live and found.live.state == DEAD else []
    return _letter(found.record, stack, found.live)


async def replay(stores: JobBackends, viewer: Viewer, queue: str, job_id: str,
                 *, data: Any = None) -> None:
    """Run a dead letter again under its id with fresh attempts; `data` (already checked
    against its type) replaces its data first. `JobNotFound`, or `JobConflict` if it is no
    longer dead (replayed meanwhile)."""
    found = await _found(stores, viewer, queue, job_id)
    await retry_job(stores, queue, job_id, found, data=data)


@dataclass(frozen=True)
class ReplayOutcome:
    ref: str
    replayed: bool
    error: str | None = None


async def replay_many(stores: JobBackends, viewer: Viewer, refs: list[tuple[str, str]],
                      *, data: Any = None) -> list[ReplayOutcome]:
    """Replay each (queue, job id); one outcome each, in order (one refused does not stop
    the others)."""
    outcomes = []
    for queue, job_id in refs:
        ref = f"{queue}:{job_id}"
        try:
            await replay(stores, viewer, queue, job_id, data=data)
        except (JobNotFound, JobConflict) as exc:
            outcomes.append(ReplayOutcome(ref, False, exc.message))
        else:
            outcomes.append(ReplayOutcome(ref, True))
    return outcomes
