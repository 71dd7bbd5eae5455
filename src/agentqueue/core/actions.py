"""Cancel and retry, the same for every API: Redis acts, the record follows.

A job that cannot be cancelled or retried in its state is refused with `JobConflict`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from agentqueue.core import priority as priorities
from agentqueue.core import states
from agentqueue.core.errors import JobConflict
from agentqueue.core.lookup import FoundJob, JobStores
from agentqueue.core.submission import JobSubmitter, NotQueued
from agentqueue.engine.connection import watch_sends
from agentqueue.engine.queue import CANCELLED_REASON, CancelOutcome, JobNotRetryable, JobQueue
from agentqueue.records.views import JobRecordView

log = logging.getLogger("agentqueue.api")  # as before the move: operators filter on it


class JobBackends(JobStores, Protocol):
    """Records and queues, and the submitter whose lease a retry takes."""

    submitter: JobSubmitter

TERMINAL = ("completed", "failed", "cancelled")
# Record statuses of a job Redis holds as failed whose record has not caught up yet (or has).
_CATCHING_UP = ("active", "failed")


async def cancel_job(services: JobBackends, queue: str, job_id: str, found: FoundJob) -> None:
    """Cancel a job that has not finished; `JobConflict` if it has (cancelled included)."""
    record = found.record
    if found.state in TERMINAL:
        raise JobConflict(job_id, f"Job {job_id} has already finished")
    if found.live is None:
        # Redis no longer holds the job: its record is all there is.
        if record is None or record.status in TERMINAL:
            raise JobConflict(job_id, f"Job {job_id} has already finished")
        await services.records.mark(queue, job_id, "cancelled", error=CANCELLED_REASON,
                                    message=CANCELLED_REASON)
        return
    outcome = await services.queues[queue].cancel(job_id)
    if outcome is CancelOutcome.ALREADY_FINISHED:
        raise JobConflict(job_id, f"Job {job_id} has already finished")
    if outcome in (CancelOutcome.CANCELLED, CancelOutcome.NOT_FOUND) and record is not None:
        # Removed before it ran. (An active job's worker records its own cancellation.)
        await services.records.mark(queue, job_id, "cancelled", error=CANCELLED_REASON,
                                    message=CANCELLED_REASON)


async def retry_job(services: JobBackends, queue: str, job_id: str, found: FoundJob,
                    *, data: Any = None) -> None:
    """Run a failed (or cancelled) job again with fresh attempts; `JobConflict` for any other
    state. `data` (checked by the caller) replaces the job's data first (a dead letter replayed
    with new data)."""
    record = found.record
    jobs = services.queues[queue]
    if found.live is None or found.live.state == "cancelled":
        # Dropped by Redis retention, or cancelled before it ran: queue it again, same id.
        if record is None or record.status not in ("failed", "cancelled"):
            state = record.status if record else states.shown(found.state)
            raise JobConflict(job_id, f"Job {job_id} cannot be retried: job is {state}; only "
                                      "failed jobs can be retried")

        async def add_again() -> None:
            await jobs.add(record.type, record.data if data is None else data, jobId=job_id,
                           attempts=record.max_attempts,
                           priority=priorities.stored(record.priority))

        await jobs.forget_tombstone(job_id)  # fails before anything is queued: nothing to undo
        await _requeue(services, record, jobs, add_again, data=data)
        return
    if found.live.state != "failed":
        state = states.shown(found.live.state)
        raise JobConflict(job_id, f"Job {job_id} cannot be retried: job is {state}; "
                                  "only failed jobs can be retried")
    if record is None:  # a job added straight to Redis: no record to keep in step
        await _retry_in_redis(jobs, job_id, data)
        return
    await _requeue(services, record, jobs, lambda: _retry_in_redis(jobs, job_id, data),
                   data=data)


async def _retry_in_redis(jobs: JobQueue, job_id: str, data: Any = None) -> None:
    try:
        if data is not None:
            await jobs.update_data(job_id, data)
        await jobs.retry(job_id)
    except (JobNotRetryable, KeyError) as exc:
        raise JobConflict(job_id, f"Job {job_id} cannot be retried: {exc}") from None


async def _requeue(
    services: JobBackends, record: JobRecordView, jobs: JobQueue,
    put_back: Callable[[], Awaitable[None]], *, data: Any = None,
) -> None:
    """Open the record again as `queued` (attempts from 0), then `put_back` the job in Redis.

    The record goes first: a worker may take the job the moment it is back in the queue. It is
    a compare-and-set on the version read (two retries at once: one wins, the other gets 409),
    with a lease that keeps the repair service off the record meanwhile. If Redis certainly did
    not take the job, the record goes back to how it was; if it may have, the retry stands and
    the repair service settles the record from Redis once the lease runs out.
    """
    lease = services.submitter.lease()
    claimed = await services.records.claim(
        record.queue, record.job_id, version=record.version, status="queued", attempt=0,
        lease_until=lease, message="retried by hand", data=data)
    if claimed is None:
        # Changed since it was read. A worker's write that only catches the record up with
        # Redis (still active, or failed now) is no competing change: claim that version. A
        # competing retry would have made it queued.
        fresh = await services.records.get(record.queue, record.job_id)
        if fresh is not None and fresh.status in _CATCHING_UP:
            record = fresh
            claimed = await services.records.claim(
                record.queue, record.job_id, version=record.version, status="queued",
                attempt=0, lease_until=lease, message="retried by hand", data=data)
    if claimed is None:
        raise JobConflict(record.job_id, f"Job {record.job_id} cannot be retried: it changed "
                                         "meanwhile; only failed jobs can be retried")
    with watch_sends(jobs.client) as watch:
        try:
            await put_back()
        except Exception as exc:
            refused = isinstance(exc, JobConflict)
            if refused or not watch.may_have_sent:
                await services.records.mark(
                    record.queue, record.job_id, record.status, attempt=record.attempts_made,
                    message="retry refused" if refused else "retry failed: queue unavailable",
                    expect_version=claimed.version)
                if refused:
                    raise
                raise NotQueued(f"job {record.job_id} was not queued again") from exc
            log.warning("Retry of job %s may not have reached Redis (%s); the repair service "
                        "will settle it", record.job_id, type(exc).__name__)
            return
    await services.records.release(record.queue, record.job_id, lease)
