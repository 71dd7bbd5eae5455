"""Generic background jobs (seed 001), at `/api/jobs`.

Jobs of every type live here, whatever queue runs them, so a job's id is `<queue>:<job id>`
(BullMQ numbers jobs per queue). Progress reads as current/total/message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from agentqueue.api.access import Caller, ServicesDep, caller_owned
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.idempotency import IDEMPOTENT
from agentqueue.api.limits import page_limit
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas.common import MAX_DELAY_MS, MAX_OFFSET, STRICT_INPUT, Name
from agentqueue.api.submit import validated_data
from agentqueue.api.trained_models import check_model_reference
from agentqueue.core import priority as priorities
from agentqueue.core import states
from agentqueue.core.actions import cancel_job, retry_job
from agentqueue.core.lookup import FoundJob, find_job, owner_of, scope_of
from agentqueue.handlers.agent_chat import CHAT
from agentqueue.handlers.notify import MAX_TARGETS, NotifyTarget, notify_option
from agentqueue.handlers.notify import OPTION as NOTIFY
from agentqueue.handlers.sessions import new_session_id
from agentqueue.records.views import JobRecordView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_datetime

router = APIRouter(
    prefix="/api/jobs", tags=["background jobs (seed 001)"], route_class=EdgeRoute
)

Status = states.Seed001Status


class CreateJob(BaseModel):
    model_config = STRICT_INPUT

    type: Name = Field(description="a job type agentqueue runs, e.g. summarize or chat")
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(
        priorities.SEED001_DEFAULT, ge=priorities.SEED001_MIN, le=priorities.SEED001_MAX,
        description="higher runs first; 0 (the default) is normal")
    # Unset: the job type's queue decides (webhooks 5, others 3), never a generic default.
    maxAttempts: int | None = Field(None, ge=1, le=20,
                                    description="default: the job type's queue's attempts")
    delay: int = Field(0, ge=0, le=MAX_DELAY_MS,
                       description="milliseconds to wait before the job may run (at most a year)")
    notify: list[NotifyTarget] | None = Field(
        None, max_length=MAX_TARGETS,
        description="announce the job's outcome (completed, failed, cancelled; not a retry) "
                    "by webhook, Slack, Discord or email")


class Progress(BaseModel):
    current: float
    total: float
    percentage: float
    message: str | None = None
    text: str | None = Field(None, description="a job streaming model output: the text so far")


class JobOut(BaseModel):
    id: str
    type: str
    name: str | None
    description: str | None
    status: Status
    progress: Progress
    data: Any
    result: Any
    error: str | None
    attempts: int
    maxAttempts: int
    priority: int
    userId: str
    organizationId: str | None
    createdAt: str | None
    startedAt: str | None
    completedAt: str | None


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


def _progress(raw: Any, message: str | None = None) -> Progress:
    if isinstance(raw, dict):
        if "current" in raw and "total" in raw:
            total = float(raw["total"]) or 1.0
            return Progress(current=raw["current"], total=raw["total"],
                            percentage=round(100 * float(raw["current"]) / total, 2),
                            message=raw.get("message"))
        text = str(raw["text"]) if raw.get("streaming") and "text" in raw else None
        raw = raw.get("percent", 0)
    else:
        text = None
    value = float(raw) if isinstance(raw, int | float) else 0.0
    return Progress(current=value, total=100, percentage=value, message=message, text=text)



def job_out(record: JobRecordView, live_progress: Any = None) -> JobOut:
    return JobOut(
        id=f"{record.queue}:{record.job_id}", type=record.type, name=record.name,
        description=record.description, status=states.of_record(record.status).seed001,
        progress=_progress(live_progress if live_progress is not None else record.progress),
        data=record.data, result=record.result, error=record.error,
        attempts=record.attempts_made, maxAttempts=record.max_attempts,
        priority=priorities.to_seed001(record.priority),
        userId=record.user_id, organizationId=record.org_id,
        createdAt=iso_from_datetime(record.created_at),
        startedAt=iso_from_datetime(record.started_at),
        completedAt=iso_from_datetime(record.finished_at),
    )


def _split(job_ref: str) -> tuple[str, str]:
    # Queue names cannot contain ':' (BullMQ's rule); job ids may (`repeat:<key>:<millis>`).
    queue, sep, job_id = job_ref.partition(":")
    if not sep or not queue or not job_id:
        raise ApiError(404, f"Job {job_ref} not found")
    return queue, job_id


async def _find(services: Services, caller: Caller, job_ref: str) -> tuple[str, str, FoundJob]:
    queue, job_id = _split(job_ref)
    if queue not in services.queues:
        raise ApiError(404, f"Job {job_ref} not found")
    found = await find_job(services, caller, queue, job_id)
    if found.record is None:  # a job added to Redis directly has no seed 001 shape
        raise ApiError(404, f"Job {job_ref} not found")
    return queue, job_id, found


find_for = _find  # the push routes find a job for a caller as these routes do


async def _current(services: Services, queue: str, job_id: str) -> JobOut:
    record = await services.records.get(queue, job_id)
    assert record is not None
    live = await services.queues[queue].get(job_id)
    return job_out(record, live.progress if live and record.status == "active" else None)


@router.post("", status_code=201, response_model=JobOut, dependencies=[IDEMPOTENT])
async def create_job(body: CreateJob, services: ServicesDep, caller: Caller) -> JobOut:
    """Create a job of a known type; it is recorded, then queued."""
    job_type = services.job_type(body.type)
    if job_type is None:
        known = ", ".join(services.registry.names())
        raise ApiError(400, f"type: unknown job type {body.type!r}; known: {known}")
    data = caller_owned(validated_data(services, job_type, body.data), caller)
    await check_model_reference(services, caller, job_type.name, data)
    if job_type.name == CHAT:  # as /agent/queue/chat: every retry continues the same session
        data.setdefault("sessionId", new_session_id())
    options = None
    if body.notify:
        try:  # checked again with the operator's rules (destinations, SMTP settings)
            options = {NOTIFY: notify_option(body.notify, owner_of(caller),
                                             services.validation_context())}
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    record = await services.submitter.submit(
        queue=job_type.queue_name(services.settings), name=job_type.name, data=data,
        owner=owner_of(caller),
        title=body.name, description=body.description,
        # A registered type's own defaults, where the request gives none.
        priority=(job_type.bullmq_priority() if body.priority is None and job_type.priority
                  else priorities.from_seed001(body.priority)),
        attempts=body.maxAttempts or job_type.attempts, delay_ms=body.delay or None,
        backoff=job_type.backoff_option(services.settings), options=options,
    )
    return job_out(record)


@router.get("/stats")
async def stats(services: ServicesDep, caller: Caller) -> dict[str, Any]:
    """Counts of the caller's jobs by status (all jobs for admins)."""
    counts = await services.records.counts(**scope_of(caller))
    out = states.tally("seed001", counts)
    finished = out["completed"] + out["failed"]
    return {
        "total": sum(counts.values()), **out,
        "successRate": round(out["completed"] / finished, 4) if finished else None,
    }


@router.get("", response_model=JobList)
async def list_jobs(
    services: ServicesDep,
    caller: Caller,
    type: Annotated[str | None, Query(max_length=200)] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobList:
    limit = page_limit(limit, services.settings.max_page_size)
    records, total = await services.records.list_jobs(
        types=[type] if type else None,
        statuses=states.record_statuses_named("seed001", status) if status else None,
        limit=limit, offset=offset, **scope_of(caller),
    )
    return JobList(jobs=[job_out(r) for r in records], total=total, limit=limit, offset=offset)


@router.get("/{job_ref}", response_model=JobOut)
async def get_job(job_ref: str, services: ServicesDep, caller: Caller) -> JobOut:
    queue, job_id, found = await _find(services, caller, job_ref)
    return await _current(services, queue, job_id)


@router.patch("/{job_ref}/cancel", response_model=JobOut, responses=error_responses(409))
async def cancel(job_ref: str, services: ServicesDep, caller: Caller) -> JobOut:
    queue, job_id, found = await _find(services, caller, job_ref)
    await cancel_job(services, queue, job_id, found)
    return await _current(services, queue, job_id)


@router.post("/{job_ref}/retry", response_model=JobOut, responses=error_responses(409))
async def retry(job_ref: str, services: ServicesDep, caller: Caller) -> JobOut:
    queue, job_id, found = await _find(services, caller, job_ref)
    await retry_job(services, queue, job_id, found)
    return await _current(services, queue, job_id)
