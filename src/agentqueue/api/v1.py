"""The AI jobs API (seed 003), at `/v1`: summarize, classify, sentiment, translate, extract on
the `ai-jobs` queue, and the admin queue endpoints (JWT or admin key)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.auth import Principal, require_jwt_or_admin_key
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.idempotency import IDEMPOTENT
from agentqueue.api.limits import page_limit
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas import ai_requests as req
from agentqueue.api.schemas.common import MAX_AGE_MS, MAX_OFFSET
from agentqueue.api.submit import model_data, served_type, validated_data
from agentqueue.api.trained_models import check_model_reference
from agentqueue.core import states
from agentqueue.core.lookup import find_job, owner_of, scope_of
from agentqueue.engine.queue import JobQueue
from agentqueue.records.views import JobRecordView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_datetime

router = APIRouter(prefix="/v1/jobs", tags=["AI jobs (seed 003)"], route_class=EdgeRoute)
admin_router = APIRouter(
    prefix="/v1/admin/queue", tags=["AI jobs admin (seed 003)"], route_class=EdgeRoute
)
AdminCaller = Annotated[Principal, Depends(require_jwt_or_admin_key)]

SeedStatus = states.Seed003Status
_USAGE_KEYS = ("tokenUsed", "costCents", "usage", "provider", "model")


class JobOut(BaseModel):
    id: str
    status: SeedStatus
    type: str
    input: Any
    output: Any = None
    error: str | None = None
    tokenUsed: int
    costCents: float
    createdAt: str | None
    completedAt: str | None


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int



def job_out(record: JobRecordView) -> JobOut:
    result = record.result if isinstance(record.result, dict) else None
    output = {k: v for k, v in result.items() if k not in _USAGE_KEYS} if result else None
    return JobOut(
        id=record.job_id, status=states.of_record(record.status).seed003, type=record.type.upper(),
        input=record.data, output=output, error=record.error,
        tokenUsed=record.input_tokens + record.output_tokens,
        costCents=round(float(record.cost_usd) * 100, 6),
        createdAt=iso_from_datetime(record.created_at),
        completedAt=iso_from_datetime(record.finished_at),
    )


async def _create(
    services: Services, caller: Principal, name: str, body: BaseModel
) -> JobOut:
    job_type = served_type(services, name)
    data = validated_data(services, job_type, model_data(body), field="")
    await check_model_reference(services, caller, name, data)
    # The caller's organization, never one the client wrote into the body (workers log it).
    data.pop("organizationId", None)
    if caller.org_id:
        data["organizationId"] = caller.org_id
    record = await services.submitter.submit(
        queue=job_type.queue_name(services.settings), name=name, data=data,
        owner=owner_of(caller),
    )
    return job_out(record)


@router.post("/summarize", status_code=201, response_model=JobOut,
             dependencies=[IDEMPOTENT])
async def summarize(body: req.SummarizeInput, services: ServicesDep, caller: Caller) -> JobOut:
    return await _create(services, caller, "summarize", body)


@router.post("/classify", status_code=201, response_model=JobOut,
             dependencies=[IDEMPOTENT])
async def classify(body: req.ClassifyInput, services: ServicesDep, caller: Caller) -> JobOut:
    return await _create(services, caller, "classify", body)


@router.post("/sentiment", status_code=201, response_model=JobOut,
             dependencies=[IDEMPOTENT])
async def sentiment(body: req.SentimentInput, services: ServicesDep, caller: Caller) -> JobOut:
    return await _create(services, caller, "sentiment", body)


@router.post("/translate", status_code=201, response_model=JobOut,
             dependencies=[IDEMPOTENT])
async def translate(body: req.TranslateInput, services: ServicesDep, caller: Caller) -> JobOut:
    return await _create(services, caller, "translate", body)


@router.post("/extract", status_code=201, response_model=JobOut,
             dependencies=[IDEMPOTENT])
async def extract(body: req.ExtractInput, services: ServicesDep, caller: Caller) -> JobOut:
    return await _create(services, caller, "extract", body)


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: str, services: ServicesDep, caller: Caller) -> JobOut:
    found = await find_job(services, caller, services.settings.ai_jobs_queue_name, job_id)
    if found.record is None:
        raise ApiError(404, f"Job {job_id} not found")
    return job_out(found.record)


@router.get("", response_model=JobList)
async def list_jobs(
    services: ServicesDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobList:
    limit = page_limit(limit, services.settings.max_page_size)
    records, total = await services.records.list_jobs(
        queues=[services.settings.ai_jobs_queue_name], limit=limit, offset=offset,
        **scope_of(caller),
    )
    return JobList(jobs=[job_out(r) for r in records], total=total, limit=limit, offset=offset)


# -- admin --------------------------------------------------------------------------------------


def _queue(services: Services, name: str) -> JobQueue:
    queue = services.queues.get(name)
    if queue is None:
        raise ApiError(404, f"queue: unknown queue {name!r}; known: {', '.join(services.queues)}")
    return queue


async def _metrics(queue: JobQueue) -> dict[str, Any]:
    counts = await queue.counts()
    shown = {k: counts[k] for k in ("waiting", "active", "completed", "failed", "delayed")}
    shown["waiting"] += counts["paused"]
    return {"queue": queue.name, **shown, "paused": await queue.is_paused(),
            "total": sum(counts.values())}


def _camel(name: str) -> str:
    head, *rest = re.split(r"[-_:]", name)
    return head + "".join(part.capitalize() for part in rest)


QueueParam = Annotated[
    str | None, Query(max_length=200, description="queue name; default: ai-jobs")
]


@admin_router.get("/metrics", responses=error_responses(404))
async def metrics(services: ServicesDep, _: AdminCaller, queue: QueueParam = None) -> Any:
    return await _metrics(_queue(services, queue or services.settings.ai_jobs_queue_name))


@admin_router.get("/metrics/all")
async def metrics_all(services: ServicesDep, _: AdminCaller) -> dict[str, Any]:
    return {_camel(name): await _metrics(q) for name, q in services.queues.items()}


@admin_router.post("/pause", responses=error_responses(404))
async def pause(services: ServicesDep, _: AdminCaller, queue: QueueParam = None) -> Any:
    target = _queue(services, queue or services.settings.ai_jobs_queue_name)
    await target.pause()
    return {"success": True, "message": f"Queue {target.name} paused", "queue": target.name}


@admin_router.post("/resume", responses=error_responses(404))
async def resume(services: ServicesDep, _: AdminCaller, queue: QueueParam = None) -> Any:
    target = _queue(services, queue or services.settings.ai_jobs_queue_name)
    await target.resume()
    return {"success": True, "message": f"Queue {target.name} resumed", "queue": target.name}


@admin_router.post("/clean", responses=error_responses(404))
async def clean(
    services: ServicesDep,
    _: AdminCaller,
    queue: QueueParam = None,
    olderThan: Annotated[int, Query(ge=0, le=MAX_AGE_MS, description="age in ms")] = 3_600_000,
) -> Any:
    """Drop finished jobs from Redis (their records stay)."""
    target = _queue(services, queue or services.settings.ai_jobs_queue_name)
    removed = await target.clean(olderThan)
    return {"success": True, "message": f"Cleaned {removed} jobs from {target.name}",
            "queue": target.name, "removed": removed}
