"""The FastAPI application: routers over the shared services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agentqueue import __version__
from agentqueue.api import agent_queue
from agentqueue.api.errors import install_error_handlers
from agentqueue.config import Settings
from agentqueue.services import Services


def create_app(settings: Settings, *, run_worker: bool, allow_embedded: bool = True) -> FastAPI:
    """The app; with `run_worker` the same process also runs a worker (`agentqueue serve`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings, allow_embedded=allow_embedded)
        app.state.services = services
        if run_worker:
            await services.start_workers()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="agentqueue",
        version=__version__,
        description="Background queue for AI-agent work, speaking the BullMQ protocol.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(agent_queue.router)
    return app
