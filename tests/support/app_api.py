"""The HTTP API in this process accepting a user App's job types, a worker running them, and
API clients for users alice and bob (organization acme) and an admin, root."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

import agentqueue
from agentqueue.api.app import create_app
from agentqueue.config import Settings
from agentqueue.services import Services
from agentqueue.serving import serve
from tests.support.workers import app_worker

Clients = dict[str, httpx.AsyncClient]


@contextlib.asynccontextmanager
async def app_api(
    make_app: Callable[[Settings], agentqueue.App], redis_url: str, prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[agentqueue.App, Services, Clients]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    user_app = make_app(settings)
    user_app.install(builtin=False)
    api = create_app(settings, run_worker=False)
    try:
        async with api.router.lifespan_context(api), app_worker(user_app):
            services: Services = api.state.services
            clients: Clients = {}
            for user, admin in (("alice", False), ("bob", False), ("root", True)):
                key, _ = await services.records.create_api_key(user_id=user, org_id="acme",
                                                               is_admin=admin)
                clients[user] = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api), base_url="http://test",
                    headers={"Authorization": f"Bearer {key}"}, timeout=30)
            try:
                yield user_app, services, clients
            finally:
                for http in clients.values():
                    await http.aclose()
    finally:
        await user_app.close()
        serve(None)


# Where in-process requests come from by default: loopback, served as the local admin while
# no API key exists (protected mode).
LOOPBACK = ("127.0.0.1", 50000)


@contextlib.asynccontextmanager
async def in_process_api(
    redis_url: str, prefix: str, data_dir: Path, *, client: tuple[str, int] = LOOPBACK,
    run_worker: bool = False, **settings: object,
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The HTTP API (with `run_worker`, its worker too) in this process, started and stopped
    around the block: a client calling it from `client`'s address, and its services."""
    config = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=data_dir,
        **settings)
    app = create_app(config, run_worker=run_worker)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=30) as http:
            yield http, app.state.services
