"""Validating a job's data for its type before it is accepted (the same rules the worker uses)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from agentqueue.api.errors import ApiError, describe_validation_error, join_field
from agentqueue.definition import JobDefinition
from agentqueue.records.views import JobOwner
from agentqueue.services import Services


def served_type(services: Services, name: str) -> JobDefinition:
    """The built-in job type a seed's route submits; 404 if this process does not serve it."""
    job_type = services.job_type(name)
    if job_type is None:
        raise ApiError(404, f"job type {name!r} is not served here (started with --no-builtin)")
    return job_type


def validated_data(
    services: Services, job_type: JobDefinition, data: dict[str, Any], *, field: str = "data",
    owner: JobOwner | None = None,
) -> dict[str, Any]:
    """`data` checked against the job type's input model: 400 naming the field otherwise.
    `owner`, the submitter, lets a model check what it names is theirs (an uploaded file)."""
    context = services.validation_context()
    if owner is not None:
        context["owner"] = owner
    try:
        # Run-time facts the model checks as the worker will: operator policy (webhook
        # destinations) and the agents an agent task may name.
        job_type.input.model_validate(data, context=context)
    except ValidationError as exc:
        within = (field,) if field else ()
        raise ApiError(400, describe_validation_error(exc, within=within)) from None
    provider = data.get("provider")
    if provider is not None:
        available = services.provider_names
        if not isinstance(provider, str) or provider.strip().lower() not in {"auto", *available}:
            raise ApiError(400, f"{join_field(field, 'provider')}: {provider!r} is not "
                                f"configured; available: {', '.join(available)}")
    return data


def model_data(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_none=True, by_alias=True)
