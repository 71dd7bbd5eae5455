"""`agentqueue schedules list | show | pause | resume | remove`: the schedules in Redis.

Talks to the queue's Redis (`REDIS_URL`; for a service running its embedded server, set
`AGENTQUEUE_EMBEDDED_PORT` for both) and the records database, as the service does. Lists the
built-in queues' schedules and those of `--queue` (your own types' queues).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from agentqueue.config import get_settings

if TYPE_CHECKING:
    from agentqueue.app import App
    from agentqueue.scheduling import Schedule

T = TypeVar("T")

schedules_app = typer.Typer(help="List, show, pause, resume and remove schedules.",
                            no_args_is_help=True)
QUEUES = typer.Option(None, "--queue", "-q", help="Also this queue (repeat for several).")


def _run(operation: Callable[[App], Awaitable[T]], queues: list[str] | None = None) -> T:
    import agentqueue

    settings = get_settings()
    if settings.external_redis_url is None:
        if not settings.embedded_port:
            typer.echo("Set REDIS_URL to the queue's Redis (or AGENTQUEUE_EMBEDDED_PORT to the "
                       "port of the service's embedded server).", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{settings.embedded_port}/0"})
    app = agentqueue.App(settings)

    async def main() -> T:
        backend = await app._backend()
        for queue in queues or []:
            backend.queue(queue)  # listed with the built-in ones
        try:
            return await operation(app)
        finally:
            await app.close()

    return asyncio.run(main())


def _local(moment: datetime | None, tz: str | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(tz or "UTC")).strftime("%Y-%m-%d %H:%M %Z")


def _timing(schedule: Schedule) -> str:
    if schedule.cron:
        return f"{schedule.cron} ({schedule.tz or 'UTC'})"
    every = schedule.every_ms or 0
    return f"every {every / 1000:g}s" if every % 1000 == 0 or every > 1000 else f"every {every}ms"


def _state(schedule: Schedule) -> str:
    if schedule.paused:
        return "paused"
    return "done" if schedule.next_run is None else "active"


@schedules_app.command("list")
def list_schedules(
    runs: int = typer.Option(3, "--runs", "-n", min=1, max=20,
                             help="How many next runs to show."),
    queue: list[str] = QUEUES,
) -> None:
    """Every schedule, the next to run first, with its next runs (in its time zone)."""
    found = _run(lambda app: app.schedules(), queue)
    if not found:
        typer.echo("No schedules.")
        return
    table = Table("id", "type", "queue", "when", "owner", "state", "runs queued",
                  f"next {runs} runs", title="Schedules")
    for schedule in found:
        owner = schedule.user_id or "-"
        if schedule.org_id:
            owner += f" ({schedule.org_id})"
        upcoming = "\n".join(_local(at, schedule.tz) for at in schedule.next_runs(runs)) or "-"
        table.add_row(schedule.id, schedule.type, schedule.queue, _timing(schedule), owner,
                      _state(schedule), str(schedule.iterations), upcoming)
    Console(width=200).print(table)


@schedules_app.command()
def show(
    schedule_id: str = typer.Argument(..., metavar="ID"),
    runs: int = typer.Option(10, "--history", help="How many past runs to list."),
    queue: list[str] = QUEUES,
) -> None:
    """One schedule: its job, timing, next runs and the runs so far."""

    async def look(app: App) -> tuple[Schedule, list[tuple[str, str, str]]]:
        schedule = await app.get_schedule(schedule_id)
        backend = await app._backend()
        past = []
        for run in await app.schedule_runs(schedule_id, runs):
            record = await backend.records.get(run.queue, run.id)
            when = record.created_at.strftime("%Y-%m-%d %H:%M:%S") if record else "-"
            past.append((run.id, record.status if record else "-", when))
        return schedule, past

    schedule, past = _found(lambda: _run(look, queue), schedule_id)
    console = Console(width=160)
    details = Table(show_header=False, title=f"Schedule {schedule.id}")
    for name, value in (
        ("type", schedule.type), ("queue", schedule.queue), ("when", _timing(schedule)),
        ("state", _state(schedule)), ("catch-up", schedule.catch_up),
        ("owner", f"{schedule.user_id or '-'} / {schedule.org_id or '-'}"),
        ("start", _local(schedule.start, schedule.tz)), ("end", _local(schedule.end, schedule.tz)),
        ("limit", str(schedule.limit or "-")), ("runs queued", str(schedule.iterations)),
        ("data", str(schedule.data)),
        ("next runs", "\n".join(_local(at, schedule.tz) for at in schedule.next_runs(5)) or "-"),
    ):
        details.add_row(name, value)
    console.print(details)
    history = Table("run (job id)", "status", "recorded", title="Runs so far")
    for row in past:
        history.add_row(*row)
    console.print(history if past else "No runs yet.")


def _found(call: Callable[[], T], schedule_id: str) -> T:
    from agentqueue.scheduling import ScheduleNotFound

    try:
        return call()
    except ScheduleNotFound:
        typer.echo(f"No schedule {schedule_id!r} (see `agentqueue schedules list`).", err=True)
        raise typer.Exit(1) from None


@schedules_app.command()
def pause(schedule_id: str = typer.Argument(..., metavar="ID"),
          queue: list[str] = QUEUES) -> None:
    """Queue no run until resumed."""
    _found(lambda: _run(lambda app: app.pause_schedule(schedule_id), queue), schedule_id)
    typer.echo(f"Paused {schedule_id}.")


@schedules_app.command()
def resume(schedule_id: str = typer.Argument(..., metavar="ID"),
           queue: list[str] = QUEUES) -> None:
    """Run again from the next time after now."""
    schedule = _found(lambda: _run(lambda app: app.resume_schedule(schedule_id), queue),
                      schedule_id)
    typer.echo(f"Resumed {schedule_id}; next run {_local(schedule.next_run, schedule.tz)}.")


@schedules_app.command()
def remove(schedule_id: str = typer.Argument(..., metavar="ID"),
           queue: list[str] = QUEUES) -> None:
    """Delete the schedule and its next run (runs' records stay)."""
    _found(lambda: _run(lambda app: app.remove_schedule(schedule_id), queue), schedule_id)
    typer.echo(f"Removed {schedule_id}.")
