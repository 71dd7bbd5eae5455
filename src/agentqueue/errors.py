"""The public API's exceptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentqueue.handle import Job


class InvalidJobInput(ValueError):
    """The data does not fit the job type's input model; the message names each field."""


class UnknownJobType(ValueError):
    """No job type of that name is defined on this App."""


class JobFailed(Exception):
    """The job failed (all its attempts spent, its input refused, or it was cancelled)."""

    def __init__(self, job_id: str, queue: str, reason: str) -> None:
        super().__init__(f"job {job_id} of {queue!r} failed: {reason}")
        self.job_id, self.queue, self.reason = job_id, queue, reason


class JobNotFound(LookupError):
    """Neither Redis nor the records know the job (removed, or never added here)."""


class JobNotFinished(RuntimeError):
    """`result()` of a job that is still waiting or running (use `wait`)."""


class BulkEnqueueError(RuntimeError):
    """`enqueue_many` queued the jobs in `queued` (handles, in order), then could not queue the
    next one (the cause is chained); that job and those after it were not queued."""

    def __init__(self, queued: list[Job]) -> None:
        super().__init__(f"queued {len(queued)} job(s), then queuing the next one failed")
        self.queued = queued


class JobNotRetryable(RuntimeError):
    """`retry()` of a job that has not failed or been cancelled (or that another retry took
    meanwhile)."""
