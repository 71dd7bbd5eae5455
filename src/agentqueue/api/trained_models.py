"""Trained models (seed 001's API), at `/api/trained-models`: the classifiers `model-training`
jobs made, listed, read and deleted by their owners (an organization's are its members').
A model the caller may not see answers 404, as one that does not exist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.schemas.common import MAX_OFFSET
from agentqueue.core.lookup import owner_of
from agentqueue.handlers.ai_tasks import CLASSIFY
from agentqueue.records.trained_models import TrainedModels, TrainedModelView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_datetime

router = APIRouter(prefix="/api/trained-models", tags=["background jobs (seed 001)"],
                   route_class=EdgeRoute)


class TrainedModelOut(BaseModel):
    id: str
    name: str | None
    kind: str
    labels: list[str]
    metrics: dict[str, Any]
    trainedBy: str
    createdAt: str | None


class TrainedModelList(BaseModel):
    models: list[TrainedModelOut]
    limit: int
    offset: int


def _store(services: Services) -> TrainedModels:
    return TrainedModels(services.records.engine)


def _out(view: TrainedModelView) -> TrainedModelOut:
    return TrainedModelOut(id=view.id, name=view.name, kind=view.kind, labels=view.labels,
                           metrics=view.metrics, trainedBy=view.source_job,
                           createdAt=iso_from_datetime(view.created_at))


async def check_model_reference(services: Services, caller: Caller, job_type: str,
                                data: dict[str, Any]) -> None:
    """A `classify` job naming a trained model the caller may not use: 400, as if absent."""
    model_id = data.get("modelId")
    if (job_type == CLASSIFY and isinstance(model_id, str)
            and await _store(services).get(owner_of(caller), model_id) is None):
        raise ApiError(400, f"data.modelId: unknown model {model_id!r}")


@router.get("", response_model=TrainedModelList)
async def list_models(
    services: ServicesDep, caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> TrainedModelList:
    """The caller's trained models (its organization's), newest first."""
    found = await _store(services).list_models(owner_of(caller), limit=limit, offset=offset)
    return TrainedModelList(models=[_out(v) for v in found], limit=limit, offset=offset)


@router.get("/{model_id}", response_model=TrainedModelOut)
async def get_model(model_id: str, services: ServicesDep, caller: Caller) -> TrainedModelOut:
    found = await _store(services).get(owner_of(caller), model_id)
    if found is None:
        raise ApiError(404, f"Model {model_id} not found")
    return _out(found)


@router.delete("/{model_id}", status_code=204)
async def delete_model(model_id: str, services: ServicesDep, caller: Caller) -> Response:
    """Delete a trained model; `classify` jobs naming it are refused from then on."""
    if not await _store(services).delete(owner_of(caller), model_id):
        raise ApiError(404, f"Model {model_id} not found")
    return Response(status_code=204)
