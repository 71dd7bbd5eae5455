"""The dashboard at `/admin/queues`: a page (assets shipped in the package, no CDN) over a JSON
API under `/admin/queues/api`, for admins (everything) and organization admins (their
organization's jobs; queue-wide actions are an admin's).

The page polls this API every two seconds, so counts and an open job page follow live."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from agentqueue.api.access import ServicesDep
from agentqueue.api.auth import Principal, current_principal, forbidden
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.jobs import ApprovalBody
from agentqueue.api.openapi import error_responses
from agentqueue.core.actions import cancel_job, retry_job
from agentqueue.core.approvals import decide
from agentqueue.core.errors import JobConflict, JobNotFound
from agentqueue.core.lookup import FoundJob, find_job, scope_of
from agentqueue.engine.queue import JobQueue
from agentqueue.metrics.aggregate import live_workers
from agentqueue.queues import clean_with_records
from agentqueue.records.models import STATUSES
from agentqueue.records.views import JobRecordView
from agentqueue.services import Services

STATIC = resources.files("agentqueue.dashboard").joinpath("static")

page = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/admin/queues/api", tags=["dashboard"], route_class=EdgeRoute)

Status = Literal["pending", "queued", "active", "completed", "failed", "cancelled"]
CleanState = Literal["completed", "failed", "waiting", "delayed", "active"]


async def operator(caller: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """An admin or an organization admin; anyone else 403."""
    if not (caller.is_admin or (caller.is_org_admin and caller.org_id is not None)):
        raise forbidden("the dashboard is for admins and organization admins")
    return caller


async def admin(caller: Annotated[Principal, Depends(operator)]) -> Principal:
    if not caller.is_admin:
        raise forbidden("queue-wide actions are for admins")
    return caller


Operator = Annotated[Principal, Depends(operator)]
Admin = Annotated[Principal, Depends(admin)]


# -- the page -------------------------------------------------------------------------------

@page.get("/admin/queues", response_class=HTMLResponse)
async def dashboard_page() -> HTMLResponse:
    """The single page; it asks for an API key and reads everything through the API."""
    return HTMLResponse(STATIC.joinpath("index.html").read_text(), headers={
        "Cache-Control": "no-store",
        # Only our own script, style and API: a job's data shown on the page cannot run.
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "frame-ancestors 'none'",
    })


# -- reading --------------------------------------------------------------------------------

@router.get("/me")
async def me(caller: Operator) -> dict[str, Any]:
    return {"user": caller.user_id, "role": caller.role, "org": caller.org_id}


@router.get("/overview")
async def overview(services: ServicesDep, caller: Operator) -> dict[str, Any]:
    """Every queue: counts by state, paused, workers alive, and the last hour's throughput and
    failure rate. An organization admin sees their organization's record counts instead of
    the queue-wide figures."""
    alive = await live_workers(services.client, services.settings.queue_prefix)
    queues = []
    for name, queue in sorted(services.queues.items()):
        entry: dict[str, Any] = {"name": name, "paused": await queue.is_paused(),
                                 "workers": alive.get(name, 0)}
        if caller.is_admin:
            entry["counts"] = await queue.counts()
            done, failed = await queue.metrics("completed"), await queue.metrics("failed")
            completed_hour, failed_hour = sum(done.per_minute), sum(failed.per_minute)
            finished = completed_hour + failed_hour
            entry["lastHour"] = {
                "completed": completed_hour, "failed": failed_hour,
                "failureRate": round(failed_hour / finished, 4) if finished else 0.0,
                "completedPerMinute": done.per_minute[::-1],
                "failedPerMinute": failed.per_minute[::-1],
            }
        else:
            entry["counts"] = await services.records.counts(queues=[name], **scope_of(caller))
        queues.append(entry)
    return {"queues": queues, "scope": "all" if caller.is_admin else caller.org_id}


@router.get("/jobs", responses=error_responses(404))
async def jobs(
    services: ServicesDep,
    caller: Operator,
    queue: str | None = None,
    status: Status | None = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="job id or title text")] = None,
    sort: Literal["newest", "oldest"] = "newest",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 25,
) -> dict[str, Any]:
    """Job records by queue and status, filtered by type, owner (user id) and text."""
    if queue is not None:
        _queue(services, queue)
    scope = scope_of(caller)
    if owner:
        if "user_id" in scope and scope["user_id"] != owner:
            return {"jobs": [], "total": 0, "page": page, "size": size}
        scope = {**scope, "user_id": owner}
    found, total = await services.records.list_jobs(
        queues=[queue] if queue else None, statuses=[status] if status else None,
        types=[type] if type else None, search=q or None, oldest_first=sort == "oldest",
        limit=size, offset=(page - 1) * size, **scope)
    return {"jobs": [_summary(r) for r in found], "total": total, "page": page, "size": size,
            "statuses": list(STATUSES)}


@router.get("/jobs/{queue}/{job_id}")
async def job(services: ServicesDep, caller: Operator, queue: str, job_id: str) -> dict[str, Any]:
    """One job: its record (owner, usage, status history) and what Redis holds (data,
    progress and streamed text, result, each attempt's error and stack, logs)."""
    found = await _find(services, caller, queue, job_id)
    live = found.live
    body: dict[str, Any] = {"queue": queue, "id": job_id, "state": found.state}
    if found.record is not None:
        body["record"] = _summary(found.record) | {
            "data": found.record.data, "result": found.record.result,
            "progress": found.record.progress, "title": found.record.name,
            "description": found.record.description}
        body["history"] = [
            {"status": e.status, "at": _iso(e.at), "attempt": e.attempt,
             "message": e.message}
            for e in await services.records.history(queue, job_id)]
    if live is not None:
        body["live"] = live.to_json() | {"stacktrace": live.stacktrace}
        body["logs"] = await services.queues[queue].logs(job_id)
    return body


@router.get("/usage")
async def usage(services: ServicesDep, caller: Operator,
                days: Annotated[int, Query(ge=1, le=366)] = 30) -> dict[str, Any]:
    """Tokens and cost by day, model, job type and organization since `days` ago."""
    since = date.today() - timedelta(days=days - 1)
    scope = scope_of(caller)
    rows = await services.records.usage(since=since, **scope)
    by: dict[str, dict[str, dict[str, float]]] = {"day": {}, "model": {}, "type": {}}
    for row in rows:
        for axis, key in (("day", row.day.isoformat()), ("model", row.model or "(none)"),
                          ("type", row.type)):
            entry = by[axis].setdefault(key, {"jobs": 0, "tokens": 0, "cost": 0.0})
            entry["jobs"] += row.jobs
            entry["tokens"] += row.input_tokens + row.output_tokens
            entry["cost"] += row.cost_usd
    orgs = await services.records.usage_by_org(since=since, org_id=scope.get("org_id"))
    return {
        "since": since.isoformat(),
        **{f"by{axis.title()}": [{"key": key, **values} for key, values in sorted(
            entries.items(), key=lambda item: item[0] if axis == "day" else -item[1]["cost"])]
           for axis, entries in by.items()},
        "byOrg": [{"key": org or "(none)", "tokens": tokens, "cost": cost}
                  for org, tokens, cost in orgs],
    }


# -- acting ---------------------------------------------------------------------------------

# Before the route of the other job actions, which would take "approval" for its {action}.
@router.post("/jobs/{queue}/{job_id}/approval", responses=error_responses(409))
async def approval(services: ServicesDep, caller: Operator, queue: str, job_id: str,
                   body: ApprovalBody) -> dict[str, Any]:
    """Approve or deny the tool call a parked job waits on (as `POST /api/jobs/{id}/approval`)."""
    found = await _find(services, caller, queue, job_id)
    call = await decide(services, queue, job_id, found, body.decision, body.reason,
                        caller.user_id)
    return {"success": True, "action": body.decision, "id": job_id, "call": call}


@router.post("/jobs/{queue}/{job_id}/{action}", responses=error_responses(409))
async def job_action(services: ServicesDep, caller: Operator, queue: str, job_id: str,
                     action: Literal["retry", "cancel", "promote", "remove"]) -> dict[str, Any]:
    """Retry a failed job, cancel one not finished, run a delayed one now, or remove a
    finished or pending one from Redis (its record stays)."""
    found = await _find(services, caller, queue, job_id)
    jobs = services.queues[queue]
    if action == "retry":
        await retry_job(services, queue, job_id, found)
    elif action == "cancel":
        await cancel_job(services, queue, job_id, found)
    elif action == "promote":
        if not await jobs.promote(job_id):
            raise JobConflict(job_id, f"Job {job_id} is not delayed")
    else:
        if found.state == "active":
            raise JobConflict(job_id, f"Job {job_id} is running: cancel it instead")
        if found.state in ("completed", "failed"):
            if found.live is not None:
                await jobs.remove(job_id)
        else:
            await cancel_job(services, queue, job_id, found)
    return {"success": True, "action": action, "id": job_id}


class CleanRequest(BaseModel):
    state: CleanState = "completed"
    older_than_s: int = Field(3600, ge=0, le=366 * 86_400, alias="olderThanS")


# Before the route of the other queue actions, which would take "clean" for its {action}.
@router.post("/queues/{queue}/clean")
async def clean(services: ServicesDep, _: Admin, queue: str,
                body: CleanRequest) -> dict[str, Any]:
    """Remove jobs in one state older than `olderThanS` (records keep the finished ones'
    history; waiting and delayed ones are cancelled)."""
    removed = await clean_with_records(services.records, _queue(services, queue), body.state,
                                       body.older_than_s)
    return {"success": True, "removed": len(removed)}


@router.post("/queues/{queue}/{action}")
async def queue_action(services: ServicesDep, _: Admin, queue: str,
                       action: Literal["pause", "resume", "retry-failed"]) -> dict[str, Any]:
    """Pause or resume a queue, or retry every failed job of it."""
    jobs = _queue(services, queue)
    if action == "pause":
        await jobs.pause()
        return {"success": True, "paused": True}
    if action == "resume":
        await jobs.resume()
        return {"success": True, "paused": False}
    retried = 0
    for view in await jobs.page(["failed"]):
        try:
            found = await find_job(services, _ADMIN, queue, view.id)
            await retry_job(services, queue, view.id, found)
            retried += 1
        except (JobConflict, JobNotFound):
            continue  # retried or removed meanwhile
    return {"success": True, "retried": retried}


# -- helpers --------------------------------------------------------------------------------

_ADMIN = Principal(user_id="dashboard", role="admin", via="local")


def _queue(services: Services, name: str) -> JobQueue:
    if name not in services.queues:
        raise HTTPException(status_code=404, detail=f"unknown queue {name!r}")
    return services.queues[name]


async def _find(services: Services, caller: Principal, queue: str, job_id: str) -> FoundJob:
    _queue(services, queue)
    return await find_job(services, caller, queue, job_id)


def _summary(record: JobRecordView) -> dict[str, Any]:
    return {
        "queue": record.queue, "id": record.job_id, "type": record.type,
        "status": record.status, "user": record.user_id, "org": record.org_id,
        "attempts": record.attempts_made, "maxAttempts": record.max_attempts,
        "error": record.error, "tokens": record.input_tokens + record.output_tokens,
        "cost": record.cost_usd, "model": record.model, "createdAt": _iso(record.created_at),
        "finishedAt": _iso(record.finished_at),
    }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
