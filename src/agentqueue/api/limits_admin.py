"""Rate limits, tenant caps and budgets over HTTP: admins read and change them at run time;
every caller sees what its organization has left to spend."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.auth import Principal, forbidden, require_jwt_or_admin_key
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.openapi import error_responses
from agentqueue.core.budgets import Budgets
from agentqueue.core.limits import InvalidLimits, LimitStore
from agentqueue.services import Services

router = APIRouter(tags=["limits"], route_class=EdgeRoute)
AdminCaller = Annotated[Principal, Depends(require_jwt_or_admin_key)]


def _store(services: Services) -> tuple[LimitStore, Budgets]:
    if services.limits is None or services.budgets is None:
        raise ApiError(503, "limits are not available in this process")
    return services.limits, services.budgets


async def _shown(store: LimitStore) -> dict[str, Any]:
    return (await store.rules()).model_dump(mode="json", by_alias=True)


@router.get("/api/admin/limits", responses=error_responses(403))
async def get_limits(services: ServicesDep, _: AdminCaller) -> dict[str, Any]:
    """Every limit in force: the settings with the run-time changes over them."""
    return await _shown(_store(services)[0])


@router.patch("/api/admin/limits", responses=error_responses(400, 403))
async def change_limits(
    services: ServicesDep, _: AdminCaller,
    patch: Annotated[dict[str, Any], Body(examples=[{
        "queues": {"agent-tasks": {"max": 100, "duration": 60000}},
        "models": {"openai/gpt-4o-mini": {"rpm": 500, "tpm": 200000}},
        "tenants": {"perOrg": 20, "perUser": 5},
        "budgets": {"acme": {"dailyTokens": 1000000, "monthlyCostUsd": 50}},
    }])],
) -> dict[str, Any]:
    """Change some limits for every process, at once (workers see it within
    LIMITS_REFRESH_SECONDS). Only what the body names changes; `null` removes a limit."""
    store = _store(services)[0]
    try:
        await store.update(patch)
    except InvalidLimits as exc:
        raise ApiError(400, str(exc)) from None
    return await _shown(store)


@router.delete("/api/admin/limits", responses=error_responses(403))
async def reset_limits(services: ServicesDep, _: AdminCaller) -> dict[str, Any]:
    """Forget the run-time changes: the settings hold again."""
    store = _store(services)[0]
    await store.reset()
    return await _shown(store)


@router.get("/api/usage/budget", responses=error_responses(400, 403))
async def budget(services: ServicesDep, caller: Caller,
                 organizationId: str | None = None) -> dict[str, Any]:  # noqa: N803 - seeds'
    """The caller's organization's budgets: limit, used and remaining, today and this month
    (admins: any organization's with `organizationId`)."""
    org = organizationId or caller.org_id
    if org is None:
        raise ApiError(400, "budgets are per organization: this caller has none; admins "
                            "name one with organizationId")
    if org != caller.org_id and not caller.is_admin:
        raise forbidden("only admins see another organization's budget")
    return await _store(services)[1].report(org)
