"""`agentqueue dead-letters list | show | replay`: jobs that failed for good (seed 002's dead
letter queue), every owner's, read from the records and Redis (`REDIS_URL` must be set)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

dead_letters_app = typer.Typer(help="Jobs that failed for good: list, show, replay.",
                               no_args_is_help=True)

_APP_HELP = "Your App (module:attribute or path.py:attribute), to check new data of its types."


def _app(ref: str | None) -> Any:
    from agentqueue.app import App
    from agentqueue.app_loader import AppNotFound, load_app
    from agentqueue.config import get_settings

    if ref is not None:
        try:
            user_app = load_app(ref)
        except AppNotFound as exc:
            raise typer.BadParameter(str(exc)) from None
    else:
        user_app = App(get_settings())
    if user_app.settings.external_redis_url is None:
        raise typer.BadParameter("set REDIS_URL (or REDIS_HOST) to the Redis the workers use")
    return user_app


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _split(ref: str) -> tuple[str, str]:
    queue, sep, job_id = ref.partition(":")
    if not sep or not queue or not job_id:
        raise typer.BadParameter(f"{ref!r}: name a dead letter as QUEUE:JOB_ID")
    return queue, job_id


@dead_letters_app.command("list")
def list_letters(
    queue: str | None = typer.Option(None, "--queue", "-q", help="Only this queue's."),
    job_type: str | None = typer.Option(None, "--type", "-t", help="Only this job type's."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000),
) -> None:
    """The newest dead letters, with their error."""
    app = _app(None)
    try:
        letters = app.dead_letters_sync(queue, type=job_type, limit=limit)
    finally:
        app.close_sync()
    if not letters:
        typer.echo("No dead letters.")
        return
    table = Table("id", "type", "owner", "attempts", "failed", "error")
    for letter in letters:
        owner = letter.user_id + (f"@{letter.org_id}" if letter.org_id else "")
        table.add_row(letter.ref, letter.type, owner or "-",
                      f"{letter.attempts_made}/{letter.max_attempts}", _when(letter.failed_at),
                      (letter.error or "-")[:80])
    Console(width=160).print(table)


@dead_letters_app.command()
def show(ref: str = typer.Argument(..., metavar="QUEUE:JOB_ID")) -> None:
    """One dead letter: its data, error and stack trace."""
    from agentqueue import dead_letter_calls
    from agentqueue.core.errors import JobNotFound

    queue, job_id = _split(ref)
    app = _app(None)

    async def get() -> Any:
        from agentqueue.core import dead_letters

        backend = await app._backend()
        backend.queue(queue)
        return await dead_letters.get_dead_letter(backend, dead_letter_calls.OPERATOR, queue,
                                                  job_id)

    try:
        letter = app.run_sync(get())
    except JobNotFound:
        typer.echo(f"No dead letter {ref}.", err=True)
        raise typer.Exit(1) from None
    finally:
        app.close_sync()
    console = Console(width=160)
    console.print(f"[bold]{letter.ref}[/bold] {letter.type}, failed {_when(letter.failed_at)} "
                  f"after {letter.attempts_made} of {letter.max_attempts} attempts")
    console.print(f"error: {letter.error}")
    console.print_json(json.dumps(letter.data))
    for line in letter.stacktrace:
        console.print(line, markup=False, highlight=False)


@dead_letters_app.command()
def replay(
    refs: list[str] = typer.Argument(None, metavar="[QUEUE:JOB_ID]...",  # noqa: B008
                                     help="The dead letters to replay."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter (of "
                                                         "--queue and --type)."),
    queue: str | None = typer.Option(None, "--queue", "-q"),
    job_type: str | None = typer.Option(None, "--type", "-t"),
    data: str | None = typer.Option(None, "--data", help="New data (JSON) for each replayed."),
    app_ref: str | None = typer.Option(None, "--app", metavar="MODULE:APP", help=_APP_HELP),
) -> None:
    """Run dead letters again under their ids, attempts from zero."""
    if bool(refs) == replay_all:
        raise typer.BadParameter("name dead letters (QUEUE:JOB_ID) or give --all, not both")
    new_data = None
    if data is not None:
        try:
            new_data = json.loads(data)
        except ValueError as exc:
            raise typer.BadParameter(f"--data: not JSON: {exc}") from None
        if not isinstance(new_data, dict):
            raise typer.BadParameter("--data: a JSON object")
    jobs = [_split(ref) for ref in refs] if refs else None
    app = _app(app_ref)
    try:
        outcomes = app.replay_dead_letters_sync(jobs, queue=queue, type=job_type, data=new_data)
    except ValueError as exc:  # new data its type refuses
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        app.close_sync()
    failed = 0
    for outcome in outcomes:
        if outcome.replayed:
            typer.echo(f"replayed {outcome.ref}")
        else:
            failed += 1
            typer.echo(f"not replayed {outcome.ref}: {outcome.error}", err=True)
    typer.echo(f"{len(outcomes) - failed} replayed, {failed} not")
    if failed:
        raise typer.Exit(1)
