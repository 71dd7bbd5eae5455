"""Cancel and retry, the same for every API: Redis acts, the record follows."""

from __future__ import annotations

from agentqueue.api.access import FoundJob
from agentqueue.api.errors import ApiError
from agentqueue.engine.queue import CANCELLED_REASON, CancelOutcome, JobNotRetryable
from agentqueue.services import Services

TERMINAL = ("completed", "failed", "cancelled")


async def cancel_job(services: Services, queue: str, job_id: str, found: FoundJob) -> None:
    """Cancel a job that has not finished; 409 if it has."""
    record = found.record
    if found.live is None:
        # Redis no longer holds the job: its record is all there is.
        if record is None or record.status in TERMINAL:
            raise ApiError(409, f"Job {job_id} has already finished")
        await services.records.mark(queue, job_id, "cancelled", error=CANCELLED_REASON,
                                    message=CANCELLED_REASON)
        return
    outcome = await services.queues[queue].cancel(job_id)
    if outcome is CancelOutcome.ALREADY_FINISHED:
        raise ApiError(409, f"Job {job_id} has already finished")
    if outcome in (CancelOutcome.CANCELLED, CancelOutcome.NOT_FOUND) and record is not None:
        # Removed before it ran. (An active job's worker records its own cancellation.)
        await services.records.mark(queue, job_id, "cancelled", error=CANCELLED_REASON,
                                    message=CANCELLED_REASON)


async def retry_job(services: Services, queue: str, job_id: str, found: FoundJob) -> None:
    """Run a failed (or cancelled) job again with fresh attempts; 409 for any other state."""
    record = found.record
    jobs = services.queues[queue]
    if found.live is None or found.live.state == "cancelled":
        # Dropped by Redis retention, or cancelled before it ran: queue it again, same id.
        if record is None or record.status not in ("failed", "cancelled"):
            state = record.status if record else found.state
            raise ApiError(409, f"Job {job_id} cannot be retried: job is {state}; only failed "
                                "jobs can be retried")
        await services.records.mark(queue, job_id, "queued", attempt=0,
                                    message="retried by hand")
        await jobs.forget_tombstone(job_id)
        await jobs.add(record.type, record.data, jobId=job_id, attempts=record.max_attempts)
        return
    if found.live.state != "failed":
        raise ApiError(409, f"Job {job_id} cannot be retried: job is {found.live.state}; "
                            "only failed jobs can be retried")
    if record is not None:
        # Before the retry: a worker may take the job the moment it is back in the queue.
        # Attempts start again from 0, as in Redis.
        await services.records.mark(queue, job_id, "queued", attempt=0,
                                    message="retried by hand")
    try:
        await jobs.retry(job_id)
    except (JobNotRetryable, KeyError) as exc:
        if record is not None:
            await services.records.mark(queue, job_id, record.status, message="retry refused")
        raise ApiError(409, f"Job {job_id} cannot be retried: {exc}") from None
