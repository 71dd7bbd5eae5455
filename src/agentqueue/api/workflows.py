"""Stored workflows over HTTP, at `/api/workflows`: a named definition of steps (what a
`workflow-execution` job's `data.workflow` holds), kept per owner, run by id with an input.

Owned like jobs: a caller sees and changes only their own (admins all, org admins their
organization's); anyone else's answers 404. A run is a `workflow-execution` job of
`/api/jobs` with the definition as it was at the run (changing the definition later changes
no run already queued)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, ValidationError

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError, describe_validation_error
from agentqueue.api.idempotency import IDEMPOTENT
from agentqueue.api.jobs import JobOut, job_out
from agentqueue.api.schemas.common import STRICT_INPUT
from agentqueue.api.submit import validated_data
from agentqueue.core import priority as priorities
from agentqueue.core.lookup import owner_of
from agentqueue.handlers.workflow_model import (
    MAX_STEPS,
    WORKFLOW_EXECUTION,
    Step,
    WorkflowDefinition,
    check_steps,
)
from agentqueue.records.workflows import WorkflowStore, WorkflowView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_datetime

router = APIRouter(prefix="/api/workflows", tags=["workflows"], route_class=EdgeRoute)


class WorkflowIn(BaseModel):
    """A workflow definition: its name and steps (see `workflow-execution`)."""

    model_config = STRICT_INPUT

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)


class WorkflowOut(BaseModel):
    id: str
    name: str
    description: str | None
    steps: list[dict[str, Any]]
    userId: str
    organizationId: str | None
    createdAt: str | None
    updatedAt: str | None


class WorkflowList(BaseModel):
    workflows: list[WorkflowOut]
    total: int


class RunIn(BaseModel):
    model_config = STRICT_INPUT

    input: dict[str, Any] = Field(default_factory=dict,
                                  description='values the steps take with {"$ref": "input.…"}')
    priority: int = Field(priorities.SEED001_DEFAULT, ge=priorities.SEED001_MIN,
                          le=priorities.SEED001_MAX, description="higher runs first")


def _store(services: Services) -> WorkflowStore:
    return WorkflowStore(services.records)


def _out(view: WorkflowView) -> WorkflowOut:
    return WorkflowOut(id=view.id, name=view.name, description=view.description,
                       steps=view.steps, userId=view.user_id, organizationId=view.org_id,
                       createdAt=iso_from_datetime(view.created_at),
                       updatedAt=iso_from_datetime(view.updated_at))


def _checked(services: Services, body: WorkflowIn) -> WorkflowDefinition:
    """The definition, refused (400) as a `workflow-execution` job's would be; the workflow's
    input is not known yet, so the fields it fills are checked at each run."""
    try:
        definition = WorkflowDefinition.model_validate(body.model_dump(mode="json"))
        check_steps(definition, None, services.validation_context())
    except ValidationError as exc:
        raise ApiError(400, describe_validation_error(exc, within=())) from None
    except ValueError as exc:
        raise ApiError(400, f"steps: {exc}") from None
    return definition


async def _found(services: Services, caller: Caller, workflow_id: str) -> WorkflowView:
    view = await _store(services).get(workflow_id)
    if view is None or not caller.can_see(view.user_id, view.org_id):
        raise ApiError(404, f"Workflow {workflow_id} not found")
    return view


@router.post("", status_code=201, response_model=WorkflowOut, dependencies=[IDEMPOTENT])
async def create_workflow(body: WorkflowIn, services: ServicesDep,
                          caller: Caller) -> WorkflowOut:
    """Store a workflow definition; run it with `POST /api/workflows/{id}/run`."""
    definition = _checked(services, body)
    view = await _store(services).create(
        name=definition.name, description=definition.description,
        steps=[s.model_dump(mode="json") for s in definition.steps], owner=owner_of(caller))
    return _out(view)


@router.get("", response_model=WorkflowList)
async def list_workflows(services: ServicesDep, caller: Caller) -> WorkflowList:
    """Your workflows (every one for admins), newest first."""
    views = await _store(services).listed(caller.org_id, every_org=caller.is_admin)
    mine = [v for v in views if caller.can_see(v.user_id, v.org_id)]
    return WorkflowList(workflows=[_out(v) for v in mine], total=len(mine))


@router.get("/{workflow_id}", response_model=WorkflowOut)
async def get_workflow(workflow_id: str, services: ServicesDep, caller: Caller) -> WorkflowOut:
    return _out(await _found(services, caller, workflow_id))


@router.put("/{workflow_id}", response_model=WorkflowOut)
async def replace_workflow(workflow_id: str, body: WorkflowIn, services: ServicesDep,
                           caller: Caller) -> WorkflowOut:
    """Replace the definition; runs already queued keep the one they started with."""
    await _found(services, caller, workflow_id)
    definition = _checked(services, body)
    view = await _store(services).replace(
        workflow_id, name=definition.name, description=definition.description,
        steps=[s.model_dump(mode="json") for s in definition.steps])
    if view is None:
        raise ApiError(404, f"Workflow {workflow_id} not found")
    return _out(view)


@router.delete("/{workflow_id}", status_code=204)
async def delete_workflow(workflow_id: str, services: ServicesDep, caller: Caller) -> Response:
    """Delete the definition; its runs' jobs and records stay."""
    await _found(services, caller, workflow_id)
    await _store(services).delete(workflow_id)
    return Response(status_code=204)


@router.post("/{workflow_id}/run", status_code=201, response_model=JobOut,
             dependencies=[IDEMPOTENT])
async def run_workflow(workflow_id: str, body: RunIn, services: ServicesDep,
                       caller: Caller) -> JobOut:
    """Queue a `workflow-execution` job of this definition with `input`; the job as
    `/api/jobs/{id}` shows it."""
    view = await _found(services, caller, workflow_id)
    job_type = services.job_type(WORKFLOW_EXECUTION)
    if job_type is None:
        raise ApiError(404, f"job type {WORKFLOW_EXECUTION!r} is not served here")
    workflow = {"name": view.name, "steps": view.steps}
    if view.description is not None:
        workflow["description"] = view.description
    data = validated_data(services, job_type, {"workflow": workflow, "input": body.input})
    record = await services.submitter.submit(
        queue=job_type.queue_name(services.settings), name=job_type.name, data=data,
        owner=owner_of(caller), title=view.name, description=f"run of workflow {view.id}",
        priority=priorities.from_seed001(body.priority), attempts=job_type.attempts,
        backoff=job_type.backoff_option(services.settings))
    return job_out(record)
