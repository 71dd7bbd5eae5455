"""What the core refuses, in its own words; each API maps these to its status codes
(`agentqueue.api.errors`: not found 404, conflict 409) and keeps the message."""

from __future__ import annotations


class JobNotFound(LookupError):
    """No such job, or one the viewer may not see: the two are told apart to nobody."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} not found")
        self.job_id = job_id
        self.message = f"Job {job_id} not found"


class JobConflict(Exception):
    """The job's state does not allow the action (cancel a finished job, retry one that has
    not failed, or a retry that lost a race with another)."""

    def __init__(self, job_id: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.message = message
