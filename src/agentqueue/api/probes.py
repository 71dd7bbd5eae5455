"""Probes for orchestrators: `/livez` (the process serves HTTP) and `/readyz` (it can take work:
Redis and the records database both answer). Public, and they say nothing about jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from agentqueue.api.access import ServicesDep

router = APIRouter(tags=["operations"])

# A dependency slower than this counts as down: a probe must answer within the orchestrator's
# own timeout (Kubernetes: 1 s by default), whatever Redis or the database are doing.
PROBE_TIMEOUT_S = 0.8


class Check(BaseModel):
    status: Literal["up", "down"]
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    redis: Check
    database: Check


@router.get("/livez", response_model=dict[str, str])
async def livez() -> dict[str, str]:
    """Alive: the process answers HTTP. Restart it if this fails; it checks no dependency."""
    return {"status": "alive"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when Redis and the records database answer (send traffic); 503 naming what does
    not answer (take it out of the load balancer; do not restart it for this)."""

    async def sql() -> None:
        async with services.records.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    redis_check, sql_check = await asyncio.gather(
        _check(services.agent_queue.ping()), _check(sql()))
    ready = redis_check.status == sql_check.status == "up"
    body = Readiness(status="ready" if ready else "not ready", redis=redis_check,
                     database=sql_check)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ready else 503)


async def _check(call: Awaitable[object]) -> Check:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await call
    except Exception as exc:  # any failure is "down", never a 500; the type, not the text
        return Check(status="down", error=type(exc).__name__)
    return Check(status="up")
