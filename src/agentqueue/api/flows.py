"""Flows over HTTP, at `/api/flows`: create a parent job with children (each a job of any known
type, nested as deep as needed) in one request; read a flow's tree back. Jobs are seed 001's
(`<queue>:<job id>` ids, the same shape as `/api/jobs`), each readable at `/api/jobs/{id}` too.
See `agentqueue.core.flows` for what a child's failure does to its parent (`onFailure`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agentqueue.api.access import Caller, ServicesDep, caller_owned
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.idempotency import IDEMPOTENT
from agentqueue.api.jobs import JobOut, job_out
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas.common import MAX_DELAY_MS, STRICT_INPUT, Name
from agentqueue.api.submit import validated_data
from agentqueue.core import priority as priorities
from agentqueue.core.flows import MAX_FLOW_NODES, AcceptedFlow, FlowNode, OnFailure, submit_flow
from agentqueue.core.lookup import find_job, owner_of
from agentqueue.handlers.agent_chat import CHAT
from agentqueue.handlers.sessions import new_session_id
from agentqueue.services import Services

router = APIRouter(prefix="/api/flows", tags=["flows"], route_class=EdgeRoute)


class FlowIn(BaseModel):
    """A job of the flow (as `POST /api/jobs` takes one) and the jobs it waits for."""

    model_config = STRICT_INPUT

    type: Name = Field(description="a job type agentqueue runs")
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(priorities.SEED001_DEFAULT, ge=priorities.SEED001_MIN,
                          le=priorities.SEED001_MAX, description="higher runs first")
    maxAttempts: int | None = Field(None, ge=1, le=20)
    delay: int = Field(0, ge=0, le=MAX_DELAY_MS)
    onFailure: OnFailure = Field(
        "fail", description="what this job's failure does to its parent: fail it (default), "
                            "ignore it (the parent runs without this result), or wait (until "
                            "this job is replayed and completes)")
    children: list[FlowIn] = Field(default_factory=list, max_length=MAX_FLOW_NODES)


class FlowOut(JobOut):
    children: list[FlowOut]


def _count(node: FlowIn) -> int:
    return 1 + sum(_count(child) for child in node.children)


def _node(services: Services, caller: Caller, body: FlowIn, path: str) -> FlowNode:
    job_type = services.job_type(body.type)
    if job_type is None:
        known = ", ".join(services.registry.names())
        raise ApiError(400, f"{path}type: unknown job type {body.type!r}; known: {known}")
    data = caller_owned(validated_data(services, job_type, body.data, field=f"{path}data"),
                        caller)
    if job_type.name == CHAT:  # as /api/jobs: every retry continues the same session
        data.setdefault("sessionId", new_session_id())
    return FlowNode(
        queue=job_type.queue_name(services.settings), name=job_type.name, data=data,
        owner=owner_of(caller), title=body.name, description=body.description,
        priority=(job_type.bullmq_priority() if body.priority is None and job_type.priority
                  else priorities.from_seed001(body.priority)),
        attempts=body.maxAttempts or job_type.attempts, delay_ms=body.delay or None,
        backoff=job_type.backoff_option(services.settings), on_failure=body.onFailure,
        children=[_node(services, caller, child, f"{path}children[{i}].")
                  for i, child in enumerate(body.children)])


def _out(accepted: AcceptedFlow) -> FlowOut:
    return FlowOut(**job_out(accepted.record).model_dump(),
                   children=[_out(child) for child in accepted.children])


@router.post("", status_code=201, response_model=FlowOut, dependencies=[IDEMPOTENT])
async def create_flow(body: FlowIn, services: ServicesDep, caller: Caller) -> FlowOut:
    """Create a parent job that runs once its children have finished; the parent reads their
    results (`ctx.children_results()`). All the flow's jobs are queued at once, or none."""
    if _count(body) > MAX_FLOW_NODES:
        raise ApiError(400, f"a flow has at most {MAX_FLOW_NODES} jobs")
    root = _node(services, caller, body, "")
    return _out(await submit_flow(services.submitter, root))


async def _tree(services: Services, caller: Caller, queue: str, job_id: str,
                depth: int = 0) -> FlowOut:
    found = await find_job(services, caller, queue, job_id)
    if found.record is None:
        raise ApiError(404, f"Flow {queue}:{job_id} not found")
    live = found.live
    record = await services.records.get(queue, job_id)
    assert record is not None
    children = []
    if depth < 64 and queue in services.queues:
        for child_queue, child_id in await services.queues[queue].children(job_id):
            if child_queue in services.queues:
                children.append(await _tree(services, caller, child_queue, child_id, depth + 1))
    progress = live.progress if live is not None and record.status == "active" else None
    return FlowOut(**job_out(record, progress).model_dump(), children=children)


@router.get("/{job_ref}", response_model=FlowOut, responses=error_responses(404))
async def get_flow(job_ref: str, services: ServicesDep, caller: Caller) -> FlowOut:
    """A flow's job with its children, each as `/api/jobs/{id}` shows it (while Redis holds
    the parent: its links to its children are Redis's)."""
    queue, sep, job_id = job_ref.partition(":")
    if not sep or queue not in services.queues:
        raise ApiError(404, f"Flow {job_ref} not found")
    return await _tree(services, caller, queue, job_id)
