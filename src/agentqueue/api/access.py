"""Finding a job for a caller: ownership decides, and someone else's job is simply not found.

A job is looked up by its record (who owns it) and its live state in Redis (while Redis keeps
it). Callers who may not see a job get the same 404 as for a job that does not exist, so ids
cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from fastapi import Depends, Request

from agentqueue.api.auth import Principal, current_principal
from agentqueue.api.errors import ApiError
from agentqueue.core import states
from agentqueue.engine.jobs import JobView, is_job_id
from agentqueue.records.views import JobOwner, JobRecordView
from agentqueue.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
Caller = Annotated[Principal, Depends(current_principal)]


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


def owner_of(principal: Principal) -> JobOwner:
    return JobOwner(user_id=principal.user_id, org_id=principal.org_id)


class Scope(TypedDict, total=False):
    """Record filters (keyword arguments of `Records.list_jobs`, `counts`, `usage`)."""

    user_id: str | None
    org_id: str | None
    no_org: bool


def scope_of(principal: Principal) -> Scope:
    """Record filters that limit a listing to what `principal` may see (as `can_see`).

    A principal without an organization sees only jobs without one: its user id alone names
    nobody in particular across organizations.
    """
    if principal.is_admin:
        return {}
    if principal.is_org_admin and principal.org_id is not None:
        return {"org_id": principal.org_id}
    if principal.org_id is not None:
        return {"user_id": principal.user_id, "org_id": principal.org_id}
    return {"user_id": principal.user_id, "no_org": True}


def caller_owned(data: dict[str, Any], caller: Principal) -> dict[str, Any]:
    """`data` with any owner fields it names (`userId`, `organizationId`) set to the caller's:
    workers log them, so a client must not be able to name someone else."""
    if "userId" in data:
        data["userId"] = caller.user_id
    if "organizationId" in data:
        if caller.org_id is None:
            del data["organizationId"]
        else:
            data["organizationId"] = caller.org_id
    return data


async def find_job(services: Services, principal: Principal, queue: str, job_id: str) -> FoundJob:
    if not is_job_id(job_id):  # e.g. `meta`: a queue's own key, never a job
        raise ApiError(404, f"Job {job_id} not found")
    record = await services.records.get(queue, job_id)
    if record is not None and not principal.can_see(record.user_id, record.org_id):
        raise ApiError(404, f"Job {job_id} not found")
    if record is None and not principal.is_admin:
        raise ApiError(404, f"Job {job_id} not found")
    live = await services.queues[queue].get(job_id) if queue in services.queues else None
    if record is None and live is None:
        raise ApiError(404, f"Job {job_id} not found")
    return FoundJob(record, live)
