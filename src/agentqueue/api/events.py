"""Server-Sent Events: a job's events as they happen, or all of a caller's jobs.

    curl -N http://localhost:3000/api/jobs/<id>/events     # one job, ends with its outcome
    curl -N http://localhost:3000/api/jobs/events          # every job the caller may see

Events (`event:` lines): `job-created`, `job-update`, `job-delta` (a piece of streamed model
output: `{"id", "attempt", "offset", "text"}`), `job-completed`, `job-failed`; the others'
`data:` is the job as `GET /api/jobs/:id` shows it. Every event has an `id:`; a client that
reconnects with `Last-Event-ID` (browsers' `EventSource` does it by itself) resumes just after
it. A job's stream starts with the job as it stands (`job-update`, or its outcome if it has
ended) and ends after its outcome; resumed after that outcome, it answers 204 (which tells an
`EventSource` to stop reconnecting).

Authentication is the HTTP API's. `EventSource` cannot set headers: `?token=<API key or JWT>`
stands for `Authorization: Bearer <token>` (prefer the header where the client can send one:
a URL may be logged by proxies).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from agentqueue.api.access import ServicesDep
from agentqueue.api.auth import Principal, current_principal
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.jobs import find_for
from agentqueue.core.lookup import find_job
from agentqueue.push import Cursor, CursorError, Feed, PushEvent, PushHub
from agentqueue.services import Services

router = APIRouter(prefix="/api/jobs", tags=["background jobs (seed 001)"],
                   route_class=EdgeRoute)
# The same stream under the other seeds' job paths, for their job ids.
seed_router = APIRouter(tags=["push"], route_class=EdgeRoute)

EVENT_NAMES = {"created": "job-created", "update": "job-update", "delta": "job-delta",
               "completed": "job-completed", "failed": "job-failed"}
# A comment line this often keeps proxies from closing an idle stream.
_PING_S = 15


def with_query_token(request: Request) -> Request:
    """`request`, with `?token=` as its Authorization header when it has none (for clients
    such as `EventSource` and browsers' WebSocket, which cannot set headers)."""
    token = request.query_params.get("token")
    if not token or "authorization" in request.headers:
        return request
    scope = dict(request.scope)
    scope["headers"] = [*request.scope["headers"],
                        (b"authorization", f"Bearer {token}".encode())]
    return Request(scope, request.receive)


async def stream_principal(request: Request) -> Principal:
    """As `current_principal`, taking `?token=` where no Authorization header is sent."""
    return await current_principal(with_query_token(request))


StreamCaller = Annotated[Principal, Depends(stream_principal)]
_TOKEN = Query(None, description="an API key or JWT, for clients that cannot send the "
                                 "Authorization header (EventSource)")


def hub_of(request: Request) -> PushHub:
    hub: PushHub = request.app.state.push
    return hub


def resume_point(request: Request) -> Cursor | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if not raw:
        return None
    try:
        return Cursor.decode(raw)
    except CursorError as exc:
        raise ApiError(400, f"Last-Event-ID: {exc}") from None


def event_data(event: PushEvent) -> dict[str, Any]:
    """An event's payload, the same for SSE and the WebSocket gateway."""
    if event.delta is not None:
        return {"id": f"{event.queue}:{event.job_id}", "attempt": event.delta.attempt,
                "offset": event.delta.offset, "text": event.delta.text}
    data: dict[str, Any] = event.job
    return data


def event_json(event: PushEvent) -> str:
    """`event_data` as JSON (a job's, encoded once for all its subscribers)."""
    if event.snapshot is not None:
        return event.snapshot.encoded
    return json.dumps(event_data(event), separators=(",", ":"))


async def _frames(feed: Feed) -> AsyncIterator[ServerSentEvent]:
    try:
        while (event := await feed.next()) is not None:
            yield ServerSentEvent(event_json(event), event=EVENT_NAMES[event.kind], id=event.id)
    finally:
        await feed.__aexit__(None, None, None)


async def _respond(feed: Feed) -> Response:
    await feed.__aenter__()
    if feed.ended and feed.pending == 0:
        await feed.__aexit__(None, None, None)
        return Response(status_code=204)
    return EventSourceResponse(_frames(feed), ping=_PING_S,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def all_job_events(
    request: Request, caller: StreamCaller,
    userId: Annotated[str | None, Query(max_length=200, description=(
        "only this user's jobs (narrows what the caller sees, never widens it)"))] = None,
    token: str | None = _TOKEN,
) -> Response:
    """Events of every job the caller may see (own jobs; an org admin's organization; an
    admin's all), from now (or after `Last-Event-ID`); never ends."""
    return await _respond(hub_of(request).feed(caller, after=resume_point(request),
                                               only_user=userId))


@router.get("/{job_ref}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 204: {}})
async def job_events(job_ref: str, request: Request, services: ServicesDep,
                     caller: StreamCaller, token: str | None = _TOKEN) -> Response:
    """One job's events: where it stands, then progress, streamed text and its outcome; ends
    after the outcome. 404 for a job the caller may not see, as `GET /api/jobs/:id`."""
    queue, job_id, _ = await find_for(services, caller, job_ref)
    return await _respond(hub_of(request).feed(caller, job=(queue, job_id),
                                               after=resume_point(request)))


_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}}, 204: {}}


async def _seed_job_stream(request: Request, services: Services, caller: Principal,
                           queue: str, job_id: str) -> Response:
    await find_job(services, caller, queue, job_id)  # 404 exactly as the seed's GET answers
    return await _respond(hub_of(request).feed(caller, job=(queue, job_id),
                                               after=resume_point(request)))


def _seed_job_events(seed: str, path: str, queue_of: Callable[[Services], str]) -> None:
    """Route `<path>/events` for one seed's job ids, in the queue that seed's jobs live in."""

    async def events(job_id: str, request: Request, services: ServicesDep,
                     caller: StreamCaller, token: str | None = _TOKEN) -> Response:
        return await _seed_job_stream(request, services, caller, queue_of(services), job_id)

    events.__doc__ = f"Seed {seed}'s job (`GET {path}`) as events, as `/api/jobs/:id/events`."
    seed_router.add_api_route(f"{path}/events", events, methods=["GET"],
                              name=f"seed_{seed}_job_events",
                              response_class=EventSourceResponse, responses=_STREAMED)


_seed_job_events("000", "/agent/queue/job/{job_id}", lambda s: s.settings.agent_queue_name)
_seed_job_events("003", "/v1/jobs/{job_id}", lambda s: s.settings.ai_jobs_queue_name)
_seed_job_events("004", "/ai/jobs/{job_id}", lambda s: s.settings.ai_tasks_queue_name)
