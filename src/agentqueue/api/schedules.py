"""Schedules over HTTP, at `/api/schedules`: a job type run by cron in a time zone (seed 002's
`addScheduledTask` with `schedule_timezone`) or every N milliseconds (seed 004's `repeat`).

Owned like jobs: a caller sees and changes only their own schedules (admins all, org admins
their organization's); anyone else's answers 404. A schedule's runs are jobs of `/api/jobs`
(`GET /api/schedules/{id}/runs` lists them, as `/api/jobs` shows them).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from agentqueue.api.access import Caller, ServicesDep, caller_owned
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.jobs import JobOut, job_out
from agentqueue.api.limits import page_limit
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas.common import MAX_OFFSET, STRICT_INPUT, Name
from agentqueue.api.submit import validated_data
from agentqueue.core import priority as priorities
from agentqueue.core.lookup import owner_of
from agentqueue.core.schedules import (
    InvalidSchedule,
    ScheduleNotFound,
    ScheduleService,
    ScheduleTaken,
    make_repeat,
    run_job_options,
)
from agentqueue.engine.schedules import DEFAULT_GRACE_MS, ScheduleView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_ms

router = APIRouter(prefix="/api/schedules", tags=["schedules"], route_class=EdgeRoute)

# How many upcoming runs a schedule's answer lists.
NEXT_RUNS = 5
# A moment: epoch milliseconds, or ISO 8601 text with a UTC offset.
Moment = int | Annotated[str, Field(max_length=40)]


class ScheduleIn(BaseModel):
    model_config = STRICT_INPUT

    type: Name = Field(description="the job type each run is, e.g. agent-task or summarize")
    data: dict[str, Any] = Field(default_factory=dict, description="each run's input")
    id: str | None = Field(None, max_length=128,
                           description="your id for it (e.g. seed 002's task id); default: new")
    cron: str | None = Field(None, max_length=200, description="e.g. '0 9 * * 1'")
    every: int | None = Field(None, description="milliseconds between runs (instead of cron)")
    tz: str | None = Field(None, max_length=64, description="IANA time zone; default UTC")
    startDate: Moment | None = None
    endDate: Moment | None = None
    limit: int | None = Field(None, description="at most this many runs")
    catchUp: Literal["once", "skip"] = Field(
        "once", description="a run missed while no worker was up: run it once when one is "
                            "back, or skip it if it is more than graceMs late")
    graceMs: int = Field(DEFAULT_GRACE_MS, ge=0, le=7 * 24 * 3600 * 1000)
    priority: int | None = Field(None, ge=0, le=10, description="0-10, higher runs first")
    maxAttempts: int | None = Field(None, ge=1, le=20)
    paused: bool = False


class ScheduleUpdate(BaseModel):
    """Fields to change; the others stay. Giving `cron` or `every` replaces the other."""

    model_config = STRICT_INPUT

    data: dict[str, Any] | None = None
    cron: str | None = Field(None, max_length=200)
    every: int | None = None
    tz: str | None = Field(None, max_length=64)
    startDate: Moment | None = None
    endDate: Moment | None = None
    limit: int | None = None
    catchUp: Literal["once", "skip"] | None = None
    graceMs: int | None = Field(None, ge=0, le=7 * 24 * 3600 * 1000)
    paused: bool | None = None


class ScheduleOut(BaseModel):
    id: str
    type: str
    queue: str
    data: Any
    cron: str | None
    every: int | None
    tz: str | None
    startDate: str | None
    endDate: str | None
    limit: int | None
    catchUp: str
    graceMs: int
    paused: bool
    nextRun: str | None = Field(description="ISO 8601 UTC; null when paused or finished")
    nextRuns: list[str]
    iterations: int = Field(description="runs queued so far, the next one included")
    userId: str
    organizationId: str | None
    createdAt: str | None


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]
    total: int


class RunList(BaseModel):
    runs: list[JobOut]
    total: int
    limit: int
    offset: int


def schedule_service(services: Services) -> ScheduleService:
    def queue_of(name: str) -> Any:
        return services.queues[name]

    return ScheduleService(queue_of, lambda: list(services.queues), services.records)


def schedule_out(view: ScheduleView) -> ScheduleOut:
    repeat = view.repeat
    return ScheduleOut(
        id=view.id, type=view.name, queue=view.queue, data=view.data, cron=repeat.pattern,
        every=repeat.every_ms, tz=repeat.tz, startDate=iso_from_ms(repeat.start_ms),
        endDate=iso_from_ms(repeat.end_ms), limit=repeat.limit, catchUp=view.catch_up,
        graceMs=view.grace_ms, paused=view.paused, nextRun=iso_from_ms(view.next_ms),
        nextRuns=[iso_from_ms(at) or "" for at in view.next_runs_ms(NEXT_RUNS)],
        iterations=view.iterations, userId=view.owner.user_id,
        organizationId=view.owner.org_id, createdAt=iso_from_ms(view.created_at_ms),
    )


def _bad(exc: InvalidSchedule) -> ApiError:
    return ApiError(400, str(exc))


@router.post("", status_code=201, response_model=ScheduleOut, responses=error_responses(409))
async def create_schedule(body: ScheduleIn, services: ServicesDep,
                          caller: Caller) -> ScheduleOut:
    """Create a schedule (or replace your own of the same `id`); its first run is queued for
    its next time."""
    job_type = services.job_type(body.type)
    if job_type is None:
        known = ", ".join(services.registry.names())
        raise ApiError(400, f"type: unknown job type {body.type!r}; known: {known}")
    data = caller_owned(validated_data(services, job_type, body.data), caller)
    try:
        repeat = make_repeat(cron=body.cron, every_ms=body.every, tz=body.tz,
                             start=body.startDate, end=body.endDate, limit=body.limit)
    except InvalidSchedule as exc:
        raise _bad(exc) from None
    queue = job_type.queue_name(services.settings)
    priority = (priorities.from_seed002(body.priority) if body.priority is not None
                else job_type.bullmq_priority())
    opts = run_job_options(services.queues[queue], priority=priority,
                           attempts=body.maxAttempts or job_type.attempts,
                           backoff=job_type.backoff_option(services.settings))
    try:
        view = await schedule_service(services).create(
            queue=queue, name=job_type.name, data=data, opts=opts, repeat=repeat,
            owner=owner_of(caller), schedule_id=body.id or uuid.uuid4().hex,
            catch_up=body.catchUp, grace_ms=body.graceMs, paused=body.paused, viewer=caller)
    except InvalidSchedule as exc:
        raise _bad(exc) from None
    except ScheduleTaken:
        raise ApiError(409, f"id: schedule id {body.id!r} is taken; choose another") from None
    return schedule_out(view)


@router.get("", response_model=ScheduleList)
async def list_schedules(services: ServicesDep, caller: Caller) -> ScheduleList:
    """Your schedules (every one for admins), the next to run first."""
    views = await schedule_service(services).list(caller)
    return ScheduleList(schedules=[schedule_out(v) for v in views], total=len(views))


@router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: str, services: ServicesDep, caller: Caller) -> ScheduleOut:
    return schedule_out(await _found(services, caller, schedule_id))


async def _found(services: Services, caller: Caller, schedule_id: str) -> ScheduleView:
    try:
        return await schedule_service(services).get(schedule_id, caller)
    except ScheduleNotFound as exc:
        raise ApiError(404, exc.message) from None


@router.patch("/{schedule_id}", response_model=ScheduleOut)
async def update_schedule(schedule_id: str, body: ScheduleUpdate, services: ServicesDep,
                          caller: Caller) -> ScheduleOut:
    """Change a schedule; its next run is computed again from now."""
    current = await _found(services, caller, schedule_id)
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    try:
        if given.keys() & {"cron", "every", "tz", "startDate", "endDate", "limit"}:
            old = current.repeat
            timing = "cron" in given or "every" in given
            changes["repeat"] = make_repeat(
                cron=given.get("cron") if timing else old.pattern,
                every_ms=given.get("every") if timing else old.every_ms,
                tz=given.get("tz", old.tz), start=given.get("startDate", old.start_ms),
                end=given.get("endDate", old.end_ms), limit=given.get("limit", old.limit))
        if "data" in given:
            job_type = services.job_type(current.name)
            if job_type is None:
                raise ApiError(409, f"job type {current.name!r} is not served here")
            changes["data"] = caller_owned(validated_data(services, job_type, given["data"]),
                                           caller)
        for field, name in (("catchUp", "catch_up"), ("graceMs", "grace_ms"),
                            ("paused", "paused")):
            if given.get(field) is not None:
                changes[name] = given[field]
        view = await schedule_service(services).update(schedule_id, caller, **changes)
    except InvalidSchedule as exc:
        raise _bad(exc) from None
    return schedule_out(view)


@router.post("/{schedule_id}/pause", response_model=ScheduleOut)
async def pause_schedule(schedule_id: str, services: ServicesDep,
                         caller: Caller) -> ScheduleOut:
    """No run is queued until resumed (the one queued next is taken back)."""
    await _found(services, caller, schedule_id)
    return schedule_out(await schedule_service(services).pause(schedule_id, caller))


@router.post("/{schedule_id}/resume", response_model=ScheduleOut)
async def resume_schedule(schedule_id: str, services: ServicesDep,
                          caller: Caller) -> ScheduleOut:
    """Runs again from its next time after now (times that passed while paused are skipped)."""
    await _found(services, caller, schedule_id)
    return schedule_out(await schedule_service(services).resume(schedule_id, caller))


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: str, services: ServicesDep, caller: Caller) -> Response:
    """Delete the schedule and its next run; runs already taken finish, and their records
    stay."""
    await _found(services, caller, schedule_id)
    await schedule_service(services).remove(schedule_id, caller)
    return Response(status_code=204)


@router.get("/{schedule_id}/runs", response_model=RunList)
async def schedule_runs(
    schedule_id: str, services: ServicesDep, caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RunList:
    """The schedule's runs so far, newest first, as `/api/jobs` shows jobs (a run is listed
    once a worker has taken it)."""
    await _found(services, caller, schedule_id)
    limit = page_limit(limit, services.settings.max_page_size)
    records, total = await schedule_service(services).runs(schedule_id, caller, limit=limit,
                                                           offset=offset)
    return RunList(runs=[job_out(r) for r in records], total=total, limit=limit, offset=offset)
