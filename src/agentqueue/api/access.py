"""The services and the caller of a request, as route dependencies.

Finding a job for a caller (`find_job`, `owner_of`, `scope_of`) is the core's
(`agentqueue.core.lookup`); a `Principal` is the core's `Viewer`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from agentqueue.api.auth import Principal, current_principal
from agentqueue.services import Services


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
Caller = Annotated[Principal, Depends(current_principal)]


def caller_owned(data: dict[str, Any], caller: Principal) -> dict[str, Any]:
    """`data` with any owner fields it names (`userId`, `organizationId`) set to the caller's:
    workers log them, so a client must not be able to name someone else."""
    if "userId" in data:
        data["userId"] = caller.user_id
    if "organizationId" in data:
        if caller.org_id is None:
            del data["organizationId"]
        else:
            data["organizationId"] = caller.org_id
    return data
