"""Tokens and cost from the records: by day, model and job type."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.auth import forbidden
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.openapi import error_responses
from agentqueue.core.lookup import Scope, scope_of

router = APIRouter(prefix="/api/usage", tags=["usage"], route_class=EdgeRoute)
# A calendar day as ISO 8601 writes it; not a timestamp (`since=0` is not a day).
DAY = r"^\d{4}-\d{2}-\d{2}$"


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"since: {value!r} is not a day (YYYY-MM-DD)") from None


@router.get("", responses=error_responses(403))
async def usage(
    services: ServicesDep,
    caller: Caller,
    since: Annotated[
        str | None,
        Query(pattern=DAY, json_schema_extra={"format": "date"},
              description="first day, YYYY-MM-DD (UTC)"),
    ] = None,
    organizationId: Annotated[  # noqa: N803 - the seeds' spelling
        str | None,
        Query(max_length=200,
              description="an organization's usage (admins; org admins: their own)"),
    ] = None,
) -> dict[str, Any]:
    """The caller's usage; an organization's for its admins; anyone's for admins."""
    scope: Scope = scope_of(caller)
    if organizationId is not None:
        if not (caller.is_admin or (caller.is_org_admin and caller.org_id == organizationId)):
            raise forbidden("only admins and that organization's admins see its usage")
        scope = {"org_id": organizationId}
    rows = await services.records.usage(since=_day(since), **scope)
    items = [
        {"day": r.day.isoformat(), "model": r.model, "type": r.type, "jobs": r.jobs,
         "inputTokens": r.input_tokens, "outputTokens": r.output_tokens,
         "costUsd": round(r.cost_usd, 8)}
        for r in rows
    ]
    return {
        "usage": items,
        "totals": {
            "jobs": sum(r.jobs for r in rows),
            "inputTokens": sum(r.input_tokens for r in rows),
            "outputTokens": sum(r.output_tokens for r in rows),
            "costUsd": round(sum(r.cost_usd for r in rows), 8),
        },
    }
