"""Dead letters (seed 002) over HTTP, at `/api/dead-letters`: jobs that failed for good, with
their error and stack; replay one (`POST /{id}/replay`) or many (`POST /replay`), with new data
if given. Ids are seed 001's `<queue>:<job id>`; a caller sees their own (admins all)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from agentqueue.api.access import Caller, ServicesDep, caller_owned
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.jobs import JobOut, job_out
from agentqueue.api.limits import page_limit
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas.common import MAX_OFFSET, STRICT_INPUT
from agentqueue.api.submit import validated_data
from agentqueue.core import dead_letters
from agentqueue.core.dead_letters import DeadLetter
from agentqueue.core.errors import JobNotFound
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_datetime

router = APIRouter(prefix="/api/dead-letters", tags=["dead letters (seed 002)"],
                   route_class=EdgeRoute)
MAX_BULK = 1000


class DeadLetterOut(BaseModel):
    id: str  # <queue>:<job id>
    queue: str
    jobId: str
    type: str
    status: str  # seed 002's name: always "failed"
    data: Any
    error: str | None
    stacktrace: list[str]  # admins only ([] for others)
    attemptsMade: int
    maxAttempts: int
    userId: str
    organizationId: str | None
    createdAt: str | None
    failedAt: str | None


class DeadLetterList(BaseModel):
    deadLetters: list[DeadLetterOut]
    total: int
    limit: int
    offset: int


class ReplayOne(BaseModel):
    model_config = STRICT_INPUT

    data: dict[str, Any] | None = Field(None, description="new data (default: the job's own)")


class ReplayMany(BaseModel):
    model_config = STRICT_INPUT

    ids: list[str] | None = Field(None, max_length=MAX_BULK,
                                  description="dead letters to replay (`<queue>:<job id>`)")
    all: bool = Field(False, description="replay every dead letter you see (up to 1,000), "
                                         "of `queue` and `type` if given")
    queue: str | None = Field(None, max_length=200)
    type: str | None = Field(None, max_length=200)
    data: dict[str, Any] | None = Field(None, description="new data for every one replayed")


class ReplayResult(BaseModel):
    id: str
    replayed: bool
    error: str | None = None


class ReplayManyOut(BaseModel):
    replayed: int
    results: list[ReplayResult]


def letter_out(letter: DeadLetter, caller: Caller) -> DeadLetterOut:
    """The stack trace is shown to admins only: it names the service's files and code (no
    stack traces to clients), and the error says what went wrong."""
    return DeadLetterOut(
        id=letter.ref, queue=letter.queue, jobId=letter.job_id, type=letter.type,
        status="failed", data=letter.data, error=letter.error,
        stacktrace=letter.stacktrace if caller.is_admin else [],
        attemptsMade=letter.attempts_made, maxAttempts=letter.max_attempts,
        userId=letter.user_id, organizationId=letter.org_id,
        createdAt=iso_from_datetime(letter.created_at),
        failedAt=iso_from_datetime(letter.failed_at))


def _split(ref: str) -> tuple[str, str]:
    queue, sep, job_id = ref.partition(":")
    if not sep or not queue or not job_id:
        raise ApiError(404, f"Dead letter {ref} not found")
    return queue, job_id


def _new_data(services: Services, caller: Caller, type_name: str,
              data: dict[str, Any] | None) -> dict[str, Any] | None:
    """New data checked against the job's type, as a create checks it."""
    if data is None:
        return None
    job_type = services.job_type(type_name)
    if job_type is None:
        raise ApiError(400, f"data: job type {type_name!r} is not served here")
    return caller_owned(validated_data(services, job_type, data), caller)


@router.get("", response_model=DeadLetterList)
async def list_dead_letters(
    services: ServicesDep, caller: Caller,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=200)] = None,  # noqa: A002 - the API's name
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DeadLetterList:
    """Jobs that failed for good (all attempts spent, or a permanent error), newest first."""
    limit = page_limit(limit, services.settings.max_page_size)
    letters, total = await dead_letters.list_dead_letters(
        services, caller, queue=queue, job_type=type, limit=limit, offset=offset)
    return DeadLetterList(deadLetters=[letter_out(x, caller) for x in letters], total=total,
                          limit=limit, offset=offset)


@router.post("/replay", response_model=ReplayManyOut, responses=error_responses(400))
async def replay_many(body: ReplayMany, services: ServicesDep, caller: Caller) -> ReplayManyOut:
    """Replay the dead letters named by `ids`, or `all` of them (of `queue`/`type`)."""
    if (body.ids is None) == (not body.all):
        raise ApiError(400, "give ids (a list of dead letter ids) or all: true, not both")
    refs: list[tuple[str, str]]
    if body.ids is not None:
        refs = []
        for ref in body.ids:
            queue, sep, job_id = ref.partition(":")
            refs.append((queue, job_id) if sep else (ref, ""))
    else:
        letters, _ = await dead_letters.list_dead_letters(
            services, caller, queue=body.queue, job_type=body.type, limit=MAX_BULK)
        refs = [(x.queue, x.job_id) for x in letters]
    results: list[ReplayResult] = []
    for queue, job_id in refs:
        ref = f"{queue}:{job_id}"
        try:
            letter = await dead_letters.get_dead_letter(services, caller, queue, job_id)
            data = _new_data(services, caller, letter.type, body.data)
            [outcome] = await dead_letters.replay_many(services, caller, [(queue, job_id)],
                                                       data=data)
        except JobNotFound:
            results.append(ReplayResult(id=ref, replayed=False,
                                        error=f"Dead letter {ref} not found"))
        except ApiError as exc:
            results.append(ReplayResult(id=ref, replayed=False, error=exc.message))
        else:
            results.append(ReplayResult(id=ref, replayed=outcome.replayed, error=outcome.error))
    return ReplayManyOut(replayed=sum(r.replayed for r in results), results=results)


@router.get("/{ref}", response_model=DeadLetterOut, responses=error_responses(404))
async def get_dead_letter(ref: str, services: ServicesDep, caller: Caller) -> DeadLetterOut:
    queue, job_id = _split(ref)
    try:
        return letter_out(await dead_letters.get_dead_letter(services, caller, queue, job_id),
                          caller)
    except JobNotFound:
        raise ApiError(404, f"Dead letter {ref} not found") from None


@router.post("/{ref}/replay", response_model=JobOut, responses=error_responses(404, 409))
async def replay_one(
    ref: str, services: ServicesDep, caller: Caller,
    body: Annotated[ReplayOne | None, Body()] = None,
) -> JobOut:
    """Run the dead letter again under its id, attempts from zero; with `data`, on that."""
    queue, job_id = _split(ref)
    try:
        letter = await dead_letters.get_dead_letter(services, caller, queue, job_id)
        data = _new_data(services, caller, letter.type, body.data if body else None)
        await dead_letters.replay(services, caller, queue, job_id, data=data)
    except JobNotFound:
        raise ApiError(404, f"Dead letter {ref} not found") from None
    record = await services.records.get(queue, job_id)
    assert record is not None
    return job_out(record)
