"""`GET /metrics`: Prometheus text, for admins (a scraper sends an admin API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from agentqueue.api.auth import Principal, admin_principal

router = APIRouter(tags=["operations"])

_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {_PROMETHEUS_TEXT: {}},
                     "description": "Prometheus text exposition format"}},
)
async def metrics(request: Request,
                  _: Annotated[Principal, Depends(admin_principal)]) -> Response:
    """Jobs by queue and state, workers alive, and the counters and histograms of every API and
    worker process (aggregated in Redis). Admins only: scrape with an admin API key."""
    from agentqueue.metrics.exposition import render  # prometheus-client only when scraped

    services = request.app.state.services
    if services.metrics is not None:  # this process's own counts, up to this request
        await services.metrics.flush()
    body = await render(services.client, services.settings.queue_prefix, services.queues)
    return Response(body, media_type=_PROMETHEUS_TEXT)
