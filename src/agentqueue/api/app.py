"""The FastAPI application: routers over the shared services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from agentqueue import __version__, tracing
from agentqueue.api import (
    agent_queue,
    ai,
    dashboard,
    dead_letters,
    documents,
    events,
    files,
    flows,
    gateway,
    jobs,
    limits_admin,
    metrics,
    probes,
    schedules,
    trained_models,
    usage,
    v1,
    workflows,
)
from agentqueue.api.auth import Authenticator
from agentqueue.api.auth_throttle import AuthFailureThrottle
from agentqueue.api.errors import install_error_handlers
from agentqueue.api.gateway import serve_gateway_port
from agentqueue.api.idempotency import install_idempotency
from agentqueue.api.limits import BodySizeLimit, RateLimiter
from agentqueue.api.openapi import install_openapi
from agentqueue.api.push_jobs import JobSnapshots
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.push import PushHub
from agentqueue.services import Services


def create_app(settings: Settings, *, run_worker: bool, allow_embedded: bool = True) -> FastAPI:
    """The app; with `run_worker` the same process also runs a worker (`agentqueue serve`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings, allow_embedded=allow_embedded)
        app.state.services = services
        app.state.auth = Authenticator(services.records, settings.secret("jwt_secret"))
        if settings.rate_limit_per_minute:
            app.state.rate_limiter = RateLimiter(
                services.client, limit=settings.rate_limit_per_minute, window_s=60,
                key_prefix=f"agentqueue:{settings.queue_prefix}:ratelimit",
            )
        if settings.auth_failures_per_minute:
            app.state.auth_throttle = AuthFailureThrottle(
                services.client, limit=settings.auth_failures_per_minute, window_s=60,
                key_prefix=f"agentqueue:{settings.queue_prefix}:authfail",
            )
        # Push (SSE, WebSocket) reads the queues' streams with blocking reads: a client of its own.
        app.state.push = PushHub(connect(services.redis_url), settings.queue_prefix,
                                 services.queues, JobSnapshots(services))
        app.state.push_origins = settings.push_origins
        services.start_maintenance()
        if run_worker:
            await services.start_workers()
        own_port = await serve_gateway_port(app, settings)
        try:
            yield
        finally:
            if own_port is not None:
                await own_port.stop()
            await sockets.close()
            await app.state.push.close()
            await services.close()

    # Swagger UI and ReDoc from assets in the fastapi-offline package, not a CDN: /docs works
    # on a machine without internet.
    app = FastAPIOffline(
        title="agentqueue",
        version=__version__,
        description="Background queue for AI-agent work, speaking the BullMQ protocol.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_idempotency(app)
    sockets = gateway.SocketGateway(app, settings.push_origins)
    app.add_middleware(gateway.SocketIOMount, server=sockets.server)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, by_path={
        files.UPLOAD_PATH: settings.data_conversion_max_upload_bytes})
    # events before jobs: `/api/jobs/events` is not a job id.
    routers = (agent_queue.router, events.router, jobs.router, v1.router, v1.admin_router,
               ai.router, usage.router, metrics.router, probes.router, dashboard.router,
               dead_letters.router, flows.router, schedules.router, limits_admin.router,
               documents.router, events.seed_router, trained_models.router, files.router,
               workflows.router)
    for router in routers:
        app.include_router(router)
    app.include_router(gateway.router)
    install_openapi(app, routers)
    app.include_router(dashboard.page)
    app.mount("/admin/queues/static", StaticFiles(directory=str(dashboard.STATIC)),
              name="dashboard-static")
    if tracing.enabled():  # a span per request, the parent of its enqueue's
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider(),
                                           excluded_urls="livez,readyz,metrics")
    return app
