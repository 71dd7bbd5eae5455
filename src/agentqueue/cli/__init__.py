"""Command line: `agentqueue serve | api | worker | keys | schedules | dead-letters | db`,
and the operator commands `jobs | queues | workers | usage`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from agentqueue import logs
from agentqueue.cli.keys import keys_app
from agentqueue.cli.supervisor import CHILD_INDEX_ENV
from agentqueue.config import Settings, get_settings

if TYPE_CHECKING:
    import redis.asyncio as redis

    from agentqueue.engine.queue import JobQueue
    from agentqueue.maintenance.runner import MaintenanceRunner
    from agentqueue.records.store import Records
    from agentqueue.services import WorkerGroup

app = typer.Typer(help="agentqueue: background AI-agent work over the BullMQ protocol.")
app.add_typer(keys_app, name="keys", help="API keys: create, list, revoke.")
db_app = typer.Typer(help="The records database (DATABASE_URL, or SQLite in the data dir).")
app.add_typer(db_app, name="db")

# The service commands need none of the operator commands (their clients, Rich): a process
# started as `agentqueue serve|api|worker` does not load them, which keeps its start short.
_SERVICE_COMMANDS = {"serve", "api", "worker"}
if not (len(sys.argv) > 1 and sys.argv[1] in _SERVICE_COMMANDS):
    from agentqueue.cli.dead_letters import dead_letters_app
    from agentqueue.cli.jobs import jobs_app
    from agentqueue.cli.queues import queues_app
    from agentqueue.cli.schedules import schedules_app
    from agentqueue.cli.usage import usage_app
    from agentqueue.cli.workers import workers_app

    app.add_typer(dead_letters_app, name="dead-letters",
                  help="Jobs that failed for good: list, show, replay.")
    app.add_typer(schedules_app, name="schedules",
                  help="Schedules: list (with their next runs), show, pause, resume, remove.")
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(queues_app, name="queues")
    app.add_typer(workers_app, name="workers")
    app.add_typer(usage_app, name="usage")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (also done on every start)."""
    from agentqueue.records.migrations import upgrade

    asyncio.run(upgrade(get_settings().records_url))
    typer.echo("database is up to date")


def _setup_logging(settings: Settings) -> None:
    # A worker process of a supervisor says which one it is (its number and pid) on every line.
    child = os.environ.get(CHILD_INDEX_ENV)
    tag = f" [worker {child} pid {os.getpid()}]" if child else ""
    logs.setup(settings.log_level, settings.log_format, tag)
    # Request lines of every poll would drown the job log lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """Around loading the service: no garbage collection meanwhile, then what was loaded is
    frozen (`gc.freeze`). Loading makes ~100k objects that live as long as the process and
    next to no garbage, so collections during it are pure cost (~0.1 s of CPU per start), and
    later ones need not walk those objects again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _serve_http(settings: Settings, *, run_worker: bool, allow_embedded: bool) -> None:
    _setup_logging(settings)
    if allow_embedded and settings.external_redis_url is None:
        # Spawned before the API is imported: the server gets ready meanwhile.
        from agentqueue.engine.embedded import EmbeddedValkey

        EmbeddedValkey.launch_early(settings.data_dir / "valkey", port=settings.embedded_port,
                                    appendfsync=settings.embedded_appendfsync)
    with _loading():
        import uvicorn

        from agentqueue.api.app import create_app

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


_PROCESSES_HELP = ("Worker processes to run under one supervisor (default: WORKER_PROCESSES, else "
                   "the number of CPU cores); 1 runs the worker in this process.")


@app.command()
def worker(
    app_ref: str | None = typer.Argument(None, metavar="[MODULE:APP]", help=_APP_HELP),
    queue: list[str] = typer.Option(  # noqa: B008 - Typer's way to declare an option
        None, "--queue", "-q", help="Queue to work on (repeat for several); default: all."
    ),
    no_builtin: bool = typer.Option(False, "--no-builtin", help=_NO_BUILTIN_HELP),
    processes: int | None = typer.Option(None, "--processes", "-p", min=1, help=_PROCESSES_HELP),
) -> None:
    """Only a worker. Needs REDIS_URL; run as many as you like."""
    with _loading():
        settings = _settings_with_app(app_ref, builtin=not no_builtin)
        _setup_logging(settings)
        if settings.external_redis_url is None:
            raise typer.BadParameter("set REDIS_URL (or REDIS_HOST) to the Redis the API uses")
        _check_queues(settings, queue or [])
        count = processes or settings.worker_processes or os.cpu_count() or 1
        if count == 1:
            import agentqueue.services  # noqa: F401 - what `_run_worker` needs, loaded here
    if count == 1:
        raise typer.Exit(asyncio.run(_run_worker(settings, queue or None)))
    from agentqueue.cli.supervisor import WorkerSupervisor

    child = [sys.executable, "-m", "agentqueue.cli", "worker", *([app_ref] if app_ref else []),
             *(arg for name in queue or [] for arg in ("--queue", name)),
             *(["--no-builtin"] if no_builtin else []), "--processes", "1"]
    supervisor = WorkerSupervisor(child, count, grace_s=settings.shutdown_grace_s)
    raise typer.Exit(asyncio.run(supervisor.run()))


def _check_queues(settings: Settings, queues: list[str]) -> None:
    """Refuse unknown queue names here, before any worker process starts (and restarts)."""
    from agentqueue.serving import served

    known = list(dict.fromkeys(d.queue_name(settings) for d in served()))
    unknown = [name for name in queues if name not in known]
    if unknown:
        raise typer.BadParameter(f"unknown queue(s) {unknown}; known: {known}")


async def _run_worker(settings: Settings, queues: list[str] | None) -> int:
    """One worker in this process until SIGTERM/SIGINT; a second signal stops active jobs at
    once instead of waiting out the grace period. The exit code."""
    from agentqueue.engine.connection import connect
    from agentqueue.services import build_workers, open_queues, open_records, start_maintenance

    url = settings.external_redis_url
    assert url is not None  # checked by the command
    records = await open_records(settings)
    workers = build_workers(settings, url, queues, records=records)
    # Maintenance (record repair, …) covers every queue, whichever ones this worker serves.
    client = connect(url)
    all_queues = open_queues(settings, client)
    maintenance = start_maintenance(settings, client, records, all_queues)
    signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    await workers.start()
    await signals.get()
    log = logging.getLogger("agentqueue")
    log.info("Shutting down worker")
    shutdown = asyncio.create_task(_shut_down(settings, workers, maintenance, all_queues,
                                              client, records))
    second = asyncio.create_task(signals.get())
    await asyncio.wait({shutdown, second}, return_when=asyncio.FIRST_COMPLETED)
    if shutdown.done():
        second.cancel()
        shutdown.result()
        return 0
    log.warning("Second signal: stopping active jobs now (their locks expire and another "
                "worker runs them again)")
    shutdown.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await shutdown
    return 1


async def _shut_down(settings: Settings, workers: WorkerGroup,
                     maintenance: MaintenanceRunner | None, queues: dict[str, JobQueue],
                     client: redis.Redis, records: Records) -> None:
    if maintenance is not None:
        await maintenance.stop()
    await workers.stop(settings.shutdown_grace_s)
    for queue in queues.values():
        await queue.close()
    await client.aclose()
    await records.close()
