"""Finding a job for a viewer: ownership decides, and someone else's job is simply not found.

A job is looked up by its record (who owns it) and its live state in Redis (while Redis keeps
it). Viewers who may not see a job get the same `JobNotFound` as for a job that does not exist
(every API answers 404 for both), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, TypedDict

from agentqueue.core import states
from agentqueue.core.errors import JobNotFound
from agentqueue.engine.jobs import JobView, is_job_id
from agentqueue.engine.queue import JobQueue
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner, JobRecordView


class Viewer(Protocol):
    """Whoever asks for a job (an API's caller): its identity and what it may see."""

    @property
    def user_id(self) -> str: ...

    @property
    def org_id(self) -> str | None: ...

    @property
    def is_admin(self) -> bool: ...

    @property
    def is_org_admin(self) -> bool: ...

    def can_see(self, owner_user_id: str, owner_org_id: str | None) -> bool: ...


class JobStores(Protocol):
    """Where jobs live: their records and their queues."""

    records: Records
    queues: dict[str, JobQueue]


@dataclass
class FoundJob:
    record: JobRecordView | None  # None for jobs added straight to Redis (admins only)
    live: JobView | None  # None once Redis retention has dropped the job

    @property
    def state(self) -> str:
        """The job's core state: Redis's when it has the job, else the record's."""
        if self.live is not None:
            return self.live.state
        assert self.record is not None
        return states.state_of_record(self.record.status)


def owner_of(viewer: Viewer) -> JobOwner:
    return JobOwner(user_id=viewer.user_id, org_id=viewer.org_id)


class Scope(TypedDict, total=False):
    """Record filters (keyword arguments of `Records.list_jobs`, `counts`, `usage`)."""

    user_id: str | None
    org_id: str | None
    no_org: bool


def scope_of(viewer: Viewer) -> Scope:
    """Record filters that limit a listing to what `viewer` may see (as `can_see`).

    A viewer without an organization sees only jobs without one: its user id alone names
    nobody in particular across organizations.
    """
    if viewer.is_admin:
        return {}
    if viewer.is_org_admin and viewer.org_id is not None:
        return {"org_id": viewer.org_id}
    if viewer.org_id is not None:
        return {"user_id": viewer.user_id, "org_id": viewer.org_id}
    return {"user_id": viewer.user_id, "no_org": True}


async def find_job(stores: JobStores, viewer: Viewer, queue: str, job_id: str) -> FoundJob:
    if not is_job_id(job_id):  # e.g. `meta`: a queue's own key, never a job
        raise JobNotFound(job_id)
    record = await stores.records.get(queue, job_id)
    if record is not None and not viewer.can_see(record.user_id, record.org_id):
        raise JobNotFound(job_id)
    if record is None and not viewer.is_admin:
        raise JobNotFound(job_id)
    live = await stores.queues[queue].get(job_id) if queue in stores.queues else None
    if record is None and live is None:
        raise JobNotFound(job_id)
    if live is not None and live.state == "delayed" and record is not None \
            and record.status == "awaiting":
        # Parked for a person's approval of a tool call (core.approvals): not merely delayed.
        live = replace(live, state="awaiting_approval", progress=record.progress)
    return FoundJob(record, live)
