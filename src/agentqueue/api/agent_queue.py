"""The agent chat queue API (seed 000), at `/agent/queue`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from agentqueue.api.access import Caller, ServicesDep, get_services
from agentqueue.api.auth import Principal, admin_principal, optional_principal
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.idempotency import IDEMPOTENT
from agentqueue.api.limits import page_limit
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas.agent_queue import (
    BatchQueuedResponse,
    BatchRequest,
    ChatRequest,
    CleanResponse,
    HealthResponse,
    HealthStats,
    JobOut,
    JobResponse,
    JobsResponse,
    MessageResponse,
    QueuedResponse,
    Stats,
    StatsResponse,
)
from agentqueue.api.schemas.common import MAX_AGE_MS
from agentqueue.api.submit import served_type, validated_data
from agentqueue.core import priority as priorities
from agentqueue.core import states
from agentqueue.core.actions import cancel_job as cancel_found
from agentqueue.core.actions import retry_job as retry_found
from agentqueue.core.approvals import AWAITING, AWAITING_STATE, pending_call
from agentqueue.core.lookup import FoundJob, find_job, owner_of, scope_of
from agentqueue.engine.jobs import JobView
from agentqueue.engine.queue import JobQueue
from agentqueue.handlers.agent_chat import BATCH, CHAT
from agentqueue.handlers.sessions import new_session_id
from agentqueue.records.views import JobRecordView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_datetime, iso_from_ms, iso_now

PREFIX = "/agent/queue"
router = APIRouter(prefix=PREFIX, tags=["agent queue (seed 000)"], route_class=EdgeRoute)

HEALTH_TIMEOUT_S = 2.0


async def get_queue(services: Annotated[Services, Depends(get_services)]) -> JobQueue:
    return services.agent_queue


Queue = Annotated[JobQueue, Depends(get_queue)]
Admin = Annotated[Principal, Depends(admin_principal)]


def _percent(progress: Any) -> int | float:
    if isinstance(progress, dict):
        value = progress.get("percent", 0)
        return value if isinstance(value, int | float) else 0
    return progress if isinstance(progress, int | float) else 0


def job_out(view: JobView) -> JobOut:
    return JobOut(
        id=view.id,
        name=view.name,
        status=states.of_state(view.state).seed000,
        progress=_percent(view.progress),
        partial=view.progress if isinstance(view.progress, dict) else None,
        data=view.data,
        result=view.result,
        createdAt=iso_from_ms(view.created_at_ms),
        processedAt=iso_from_ms(view.processed_at_ms),
        finishedAt=iso_from_ms(view.finished_at_ms),
        attemptsMade=view.attempts_made,
        failedReason=view.failed_reason,
        approval=pending_call(view.progress) if view.state == AWAITING_STATE else None,
    )


def record_out(record: JobRecordView) -> JobOut:
    """A job Redis no longer holds, from its durable record."""
    return JobOut(
        id=record.job_id,
        name=record.type,
        status=states.of_record(record.status).seed000,
        progress=_percent(record.progress),
        data=record.data,
        result=record.result,
        createdAt=iso_from_datetime(record.created_at),
        processedAt=iso_from_datetime(record.started_at),
        finishedAt=iso_from_datetime(record.finished_at),
        attemptsMade=record.attempts_made,
        failedReason=record.error,
        approval=pending_call(record.progress) if record.status == AWAITING else None,
    )



def found_out(found: FoundJob) -> JobOut:
    if found.live is not None:
        return job_out(found.live)
    assert found.record is not None
    return record_out(found.record)


def _priority(metadata: Any) -> int:
    return priorities.from_level(getattr(metadata, "priority", None))


async def _find(services: Services, caller: Principal, job_id: str) -> FoundJob:
    return await find_job(services, caller, services.settings.agent_queue_name, job_id)


@router.post("/chat", status_code=201, response_model=QueuedResponse, dependencies=[IDEMPOTENT])
async def queue_chat(body: ChatRequest, services: ServicesDep, caller: Caller) -> QueuedResponse:
    """Queue a chat message for the agent to answer in the background."""
    # The chat job's input model, with the operator's limits, as /api/jobs checks it.
    data = validated_data(services, served_type(services, CHAT),
                          body.model_dump(exclude_none=True), field="")
    # Created here, not in the worker, so every retry continues the same session.
    data["sessionId"] = body.sessionId or new_session_id()
    record = await services.submitter.submit(
        queue=services.settings.agent_queue_name, name=CHAT, data=data, owner=owner_of(caller),
        priority=_priority(body.metadata),
    )
    job_id = record.job_id
    return QueuedResponse(
        jobId=job_id,
        message="Chat job queued successfully",
        statusUrl=f"{PREFIX}/job/{job_id}",
        timestamp=iso_now(),
    )


@router.post("/batch", status_code=201, response_model=BatchQueuedResponse,
             dependencies=[IDEMPOTENT])
async def queue_batch(
    body: BatchRequest, services: ServicesDep, caller: Caller
) -> BatchQueuedResponse:
    """Queue several messages answered one after another in one job, one result each."""
    data = validated_data(services, served_type(services, BATCH),
                          body.model_dump(exclude_none=True), field="")
    record = await services.submitter.submit(
        queue=services.settings.agent_queue_name, name=BATCH, data=data, owner=owner_of(caller),
        priority=_priority(body.metadata),
    )
    job_id = record.job_id
    return BatchQueuedResponse(
        jobId=job_id,
        messageCount=len(body.messages),
        message="Batch chat job queued successfully",
        statusUrl=f"{PREFIX}/job/{job_id}",
        timestamp=iso_now(),
    )


@router.get("/job/{job_id}", response_model=JobResponse, response_model_exclude_none=False)
async def get_job(job_id: str, services: ServicesDep, caller: Caller) -> JobResponse:
    """A job's status, progress, data, result and timestamps."""
    return JobResponse(job=found_out(await _find(services, caller, job_id)))


@router.get("/job/{job_id}/result")
async def get_job_result(job_id: str, services: ServicesDep, caller: Caller) -> dict[str, Any]:
    """Only the result: the answer, or why there is none yet."""
    job = found_out(await _find(services, caller, job_id))
    if job.status == "completed":
        return {"success": True, "result": job.result}
    if job.status == "failed":
        return {"success": False, "message": "Job failed", "error": job.failedReason}
    return {
        "success": False,
        "message": "Job is still processing",
        "status": job.status,
        "progress": job.progress,
    }


@router.delete("/job/{job_id}", response_model=MessageResponse, responses=error_responses(409))
async def cancel_job(job_id: str, services: ServicesDep, caller: Caller) -> MessageResponse:
    """Cancel a waiting, delayed or active job. It ends as failed, not retried."""
    found = await _find(services, caller, job_id)
    await cancel_found(services, services.settings.agent_queue_name, job_id, found)
    return MessageResponse(message="Job cancelled successfully")


@router.post("/job/{job_id}/retry", response_model=MessageResponse,
             responses=error_responses(409))
async def retry_job(job_id: str, services: ServicesDep, caller: Caller) -> MessageResponse:
    """Run a failed job again, with a fresh set of attempts."""
    found = await _find(services, caller, job_id)
    await retry_found(services, services.settings.agent_queue_name, job_id, found)
    return MessageResponse(message="Job retry initiated")


def _stats(counts: dict[str, int]) -> Stats:
    return Stats(**counts, total=sum(counts.values()))


async def _counts_for(services: Services, caller: Principal) -> dict[str, int]:
    """Jobs of the agent queue per seed state: all of them for an admin, else the caller's."""
    if caller.is_admin:
        return await services.agent_queue.counts()
    by_status = await services.records.counts(
        queues=[services.settings.agent_queue_name], **scope_of(caller)
    )
    return states.tally("seed000", by_status)


@router.get("/stats", response_model=StatsResponse)
async def stats(services: ServicesDep, caller: Caller) -> StatsResponse:
    """Counts of jobs in each state (the caller's own jobs, unless an admin)."""
    return StatsResponse(stats=_stats(await _counts_for(services, caller)), timestamp=iso_now())


@router.get("/jobs", response_model=JobsResponse)
async def recent_jobs(
    services: ServicesDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many jobs, newest first")] = 10,
    status: Annotated[
        Literal["waiting", "active", "completed", "failed", "delayed", "paused"] | None,
        Query(description="Only jobs with this status"),
    ] = None,
) -> JobsResponse:
    """Recent jobs, newest first: the caller's own, unless an admin. Kept in the records, so
    jobs Redis has already dropped are listed too."""
    limit = page_limit(limit, services.settings.max_page_size)
    if status in ("delayed", "paused"):
        # Only Redis knows these; the records say which of them the caller may see.
        views = await services.agent_queue.list_jobs(states.states_named("seed000", status), limit)
        jobs = [job_out(v) for v in views if await _may_see(services, caller, v.id)]
    else:
        records, _ = await services.records.list_jobs(
            queues=[services.settings.agent_queue_name],
            statuses=states.record_statuses_named("seed000", status) if status else None,
            limit=limit, **scope_of(caller),
        )
        jobs = [record_out(r) for r in records]
    return JobsResponse(count=len(jobs), jobs=jobs)


async def _may_see(services: Services, caller: Principal, job_id: str) -> bool:
    if caller.is_admin:
        return True
    record = await services.records.get(services.settings.agent_queue_name, job_id)
    return record is not None and caller.can_see(record.user_id, record.org_id)


@router.post("/clean", response_model=CleanResponse)
async def clean(
    queue: Queue,
    _: Admin,
    olderThan: Annotated[
        int, Query(ge=0, le=MAX_AGE_MS, description="Age in milliseconds")
    ] = 86_400_000,
) -> CleanResponse:
    """Remove completed and failed jobs that finished more than `olderThan` ms ago."""
    removed = await queue.clean(olderThan)
    return CleanResponse(message=f"Cleaned jobs older than {olderThan}ms", removed=removed)


@router.post("/pause", response_model=MessageResponse)
async def pause(queue: Queue, _: Admin) -> MessageResponse:
    """Stop workers taking new jobs; active jobs finish."""
    await queue.pause()
    return MessageResponse(message="Queue paused")


@router.post("/resume", response_model=MessageResponse)
async def resume(queue: Queue, _: Admin) -> MessageResponse:
    await queue.resume()
    return MessageResponse(message="Queue resumed")


@router.get("/health", response_model=HealthResponse, response_model_exclude_none=True,
            responses={503: {"model": HealthResponse}})
async def health(
    services: ServicesDep,
    caller: Annotated[Principal | None, Depends(optional_principal)],
) -> Any:
    """Healthy when Redis answers; 503 when it does not. Public, as a liveness probe; the job
    counts (`stats`) only for an authenticated caller (an admin: the whole queue; anyone else:
    their own jobs) or the local user in protected mode."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await services.agent_queue.ping()
            counts = await _counts_for(services, caller) if caller is not None else None
    except Exception as exc:  # any failure to reach Redis is "unhealthy", not a 500
        body = HealthResponse(
            success=False, status="unhealthy",
            error=f"Redis unreachable: {type(exc).__name__}", timestamp=iso_now(),
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    shown = None
    if counts is not None:
        shown = HealthStats(**{k: counts[k] for k in ("waiting", "active", "completed",
                                                       "failed")})
    return HealthResponse(success=True, status="healthy", stats=shown, timestamp=iso_now())
