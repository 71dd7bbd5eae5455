"""The OpenAPI schema, made the truth about the error answers every operation can give.

FastAPI documents a 422 `HTTPValidationError` for every operation with inputs; agentqueue answers
invalid input with 400 and `{"success": false, "message": ...}` (see `errors.py`). This replaces
the 422 and adds, to each operation, the errors it can answer, all with the `ErrorBody` model:

- 400 invalid input (any operation: a NUL in the query or path is refused everywhere)
- 401 no or bad credentials, 429 over the caller's rate: operations that authenticate
- 403 admin operations
- 404 operations on a resource named in the path
- 413 operations that take a body
- 503 every operation (Redis or the records database unreachable)

It also documents each served job type's input model (`job_schemas`).

An operation declaring a code itself (`responses=` on the route) keeps its own description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from agentqueue.api.auth import (
    admin_principal,
    current_principal,
    optional_principal,
    require_jwt_or_admin_key,
)
from agentqueue.api.job_schemas import add_job_types
from agentqueue.api.schemas.common import ErrorBody
from agentqueue.registry import JobRegistry
from agentqueue.serving import served

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_DESCRIPTIONS = {
    "400": "Invalid input; the message names the field and what is wrong with it",
    "401": "No credentials, or credentials that are not valid",
    "403": "Valid credentials without the rights this operation needs",
    "404": "Not found (or not the caller's)",
    "409": "Not possible in the job's current state",
    "413": "Request body over MAX_BODY_BYTES",
    "429": "Too many requests; retry after `Retry-After` seconds",
    "503": "The queue backend is unavailable; retry after `Retry-After` seconds",
}
_ADMIN = (admin_principal, require_jwt_or_admin_key)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer these error codes beyond the usual ones."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[str(code)]}
            for code in codes}


def _calls(dependant: Dependant) -> set[Any]:
    """Every dependency callable of a route, however deeply nested."""
    found = set()
    for dep in dependant.dependencies:
        found.add(dep.call)
        found |= _calls(dep)
    return found


def _error_codes(route: APIRoute) -> list[str]:
    calls = _calls(route.dependant)
    codes = ["400", "503"]
    from agentqueue.api.events import stream_principal  # events' routes document with these

    if calls & {current_principal, optional_principal, stream_principal, *_ADMIN}:
        codes += ["401", "429"]
    if calls & set(_ADMIN):
        codes.append("403")
    if route.dependant.path_params:
        codes.append("404")
    if route.body_field is not None:
        codes.append("413")
    from agentqueue.api.idempotency import idempotency_claim

    if idempotency_claim in calls:
        codes += ["409", "422"]
    return codes


# What the error codes mean on a route that takes an `Idempotency-Key`.
_IDEMPOTENT_DESCRIPTIONS = {
    "409": "A request with the same Idempotency-Key is still being answered",
    "422": "The Idempotency-Key was already used with a different request",
}


def build_schema(
    app: FastAPI, routers: Sequence[APIRouter], registry: JobRegistry | None = None
) -> dict[str, Any]:
    """The schema, with the job types `registry` holds (this process's served ones)."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema()
    routes = [route for router in routers for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = _error_codes(route)
            idempotent = "422" in codes
            for code in codes:
                described = _IDEMPOTENT_DESCRIPTIONS if idempotent else {}
                responses.setdefault(code, {
                    "description": described.get(code) or _DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": _ERROR_REF}},
                })
            if idempotent:  # a replay: the first answer again
                responses.setdefault("200", {
                    "description": "The first answer to this Idempotency-Key, again "
                                   "(header Idempotent-Replayed: true)"})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    add_job_types(schema, served() if registry is None else registry)
    return schema


def install_openapi(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Serve `build_schema` as the app's schema; `routers` are those the app includes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            services = getattr(app.state, "services", None)
            app.openapi_schema = build_schema(
                app, routers, services.registry if services is not None else None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
