"""Command line: `agentqueue serve | api | worker | keys | db`."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer
import uvicorn

from agentqueue.cli.keys import keys_app
from agentqueue.config import Settings, get_settings

app = typer.Typer(help="agentqueue: background AI-agent work over the BullMQ protocol.")
app.add_typer(keys_app, name="keys", help="API keys: create, list, revoke.")
db_app = typer.Typer(help="The records database (DATABASE_URL, or SQLite in the data dir).")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (also done on every start)."""
    from agentqueue.records.migrations import upgrade

    asyncio.run(upgrade(get_settings().records_url))
    typer.echo("database is up to date")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
    )
    # Request lines of every poll would drown the job log lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _serve_http(settings: Settings, *, run_worker: bool, allow_embedded: bool) -> None:
    from agentqueue.api.app import create_app

    _setup_logging(settings)
    application = create_app(settings, run_worker=run_worker, allow_embedded=allow_embedded)
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )


_APP_HELP = ("Your agentqueue.App as module:attribute (or path/to/file.py:attribute): its job "
             "types are served beside the built-in ones.")


_NO_BUILTIN_HELP = "Serve only the App's job types, not the built-in ones (chat, summarize, …)."


def _settings_with_app(ref: str | None, *, builtin: bool = True) -> Settings:
    """The settings to run with: those of the user's App (its types served), if given."""
    if ref is None:
        if not builtin:
            raise typer.BadParameter("--no-builtin serves only an App's job types: name the App")
        return get_settings()
    from agentqueue.app_loader import AppNotFound, load_app

    try:
        user_app = load_app(ref)
    except AppNotFound as exc:
        raise typer.BadParameter(str(exc)) from None
    user_app.install(builtin=builtin)
    return user_app.settings


@app.command()
def serve(
    app_ref: str | None = typer.Option(None, "--app", metavar="MODULE:APP", help=_APP_HELP),
    no_builtin: bool = typer.Option(False, "--no-builtin", help=_NO_BUILTIN_HELP),
) -> None:
    """API and worker in one process; starts an embedded Valkey unless REDIS_URL is set."""
    _serve_http(_settings_with_app(app_ref, builtin=not no_builtin), run_worker=True,
                allow_embedded=True)


@app.command()
def api(
    app_ref: str | None = typer.Option(None, "--app", metavar="MODULE:APP", help=_APP_HELP),
    no_builtin: bool = typer.Option(False, "--no-builtin", help=_NO_BUILTIN_HELP),
) -> None:
    """Only the HTTP API (production: run workers separately). Needs REDIS_URL."""
    _serve_http(_settings_with_app(app_ref, builtin=not no_builtin), run_worker=False,
                allow_embedded=False)


@app.command()
def worker(
    app_ref: str | None = typer.Argument(None, metavar="[MODULE:APP]", help=_APP_HELP),
    queue: list[str] = typer.Option(  # noqa: B008 - Typer's way to declare an option
        None, "--queue", "-q", help="Queue to work on (repeat for several); default: all."
    ),
    no_builtin: bool = typer.Option(False, "--no-builtin", help=_NO_BUILTIN_HELP),
) -> None:
    """Only a worker. Needs REDIS_URL; run as many as you like."""
    settings = _settings_with_app(app_ref, builtin=not no_builtin)
    _setup_logging(settings)
    asyncio.run(_run_worker(settings, queue or None))


async def _run_worker(settings: Settings, queues: list[str] | None) -> None:
    from agentqueue.engine.connection import connect
    from agentqueue.services import build_workers, open_queues, open_records, start_maintenance

    url = settings.external_redis_url
    if url is None:
        raise typer.BadParameter("set REDIS_URL (or REDIS_HOST) to the Redis the API uses")
    records = await open_records(settings)
    workers = build_workers(settings, url, queues, records=records)
    # Maintenance (record repair, …) covers every queue, whichever ones this worker serves.
    client = connect(url)
    all_queues = open_queues(settings, client)
    maintenance = start_maintenance(settings, client, records, all_queues)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await workers.start()
    await stop.wait()
    logging.getLogger("agentqueue").info("Shutting down worker")
    if maintenance is not None:
        await maintenance.stop()
    await workers.stop(settings.shutdown_grace_s)
    for queue in all_queues.values():
        await queue.close()
    await client.aclose()
    await records.close()

