"""`agentqueue queues [list] | pause | resume | clean`: every queue's counts by state, and the
queue-wide actions (admins, in remote mode)."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from agentqueue.cli.output import AppRef, Json, Key, Url, console, fail, print_json, run

queues_app = typer.Typer(help="Queues: counts by state; pause, resume, clean.")

STATES = ["finished", "completed", "failed", "waiting", "delayed", "paused", "prioritized",
          "active"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")

Name = Annotated[str, typer.Argument(metavar="QUEUE", help="The queue, e.g. ai-jobs.")]


def seconds(text: str) -> float:
    """'90', '90s', '30m', '1h', '2d', '1w' -> seconds. (Five units: a library is not worth
    its weight here.)"""
    match = _DURATION.match(text)
    if match is None:
        fail(f"--older-than {text!r}: a duration such as 3600, 90s, 30m, 1h, 2d or 1w")
    return float(match[1]) * _UNITS[match[2] or "s"]


@queues_app.callback(invoke_without_command=True)
def queues_main(ctx: typer.Context, url: Url = None, key: Key = None, app_ref: AppRef = None,
                as_json: Json = False) -> None:
    """Every queue's counts by state (what `queues list` shows)."""
    if ctx.invoked_subcommand is None:
        _list(url, key, app_ref, as_json)


@queues_app.command("list")
def list_queues(url: Url = None, key: Key = None, app_ref: AppRef = None,
                as_json: Json = False) -> None:
    """Every queue's counts by state, and whether it is paused."""
    _list(url, key, app_ref, as_json)


def _list(url: str | None, key: str | None, app_ref: str | None, as_json: bool) -> None:
    queues = run(url, key, app_ref, lambda c: c.queues())
    if as_json:
        print_json(queues)
        return
    table = Table("queue", "waiting", "active", "delayed", "completed", "failed", "total",
                  "paused")
    for q in queues:
        table.add_row(q["queue"], *(str(q[k]) for k in ("waiting", "active", "delayed",
                                                         "completed", "failed", "total")),
                      "yes" if q["paused"] else "no")
    console.print(table)


@queues_app.command()
def pause(queue: Name, url: Url = None, key: Key = None, app_ref: AppRef = None,
          as_json: Json = False) -> None:
    """Workers (every process) take no new job from the queue; active jobs finish."""
    _done(run(url, key, app_ref, lambda c: c.pause(queue)), as_json, f"Paused {queue}.")


@queues_app.command()
def resume(queue: Name, url: Url = None, key: Key = None, app_ref: AppRef = None,
           as_json: Json = False) -> None:
    """Workers take jobs from the queue again."""
    _done(run(url, key, app_ref, lambda c: c.resume(queue)), as_json, f"Resumed {queue}.")


@queues_app.command()
def clean(
    queue: Name,
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="AGE",
        help="Only jobs older than this: 3600, 90s, 30m, 1h, 2d, 1w (0: all).")] = "1h",
    state: Annotated[str, typer.Option(
        help="finished (completed and failed), or one state; pending states and active ones "
             "need direct mode.")] = "finished",
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all); direct mode.")]
    = 0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    url: Url = None, key: Key = None, app_ref: AppRef = None, as_json: Json = False,
) -> None:
    """Remove old jobs from Redis. Finished jobs keep their records (and `jobs show`); waiting
    or delayed ones are cancelled, their records too."""
    if state not in STATES:
        fail(f"--state {state!r}: one of {', '.join(STATES)}")
    age = seconds(older_than)
    if not yes:
        if not sys.stdin.isatty():
            fail("clean removes jobs: pass --yes to confirm")
        typer.confirm(f"Remove {state} jobs of {queue} older than {older_than}?", abort=True)
    done = run(url, key, app_ref,
               lambda c: c.clean(queue, older_than_s=age, state=state, limit=limit))
    _done(done, as_json, f"Removed {done['removed']} job(s) from {queue}.")


def _done(answer: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        print_json(answer)
    else:
        typer.echo(message)
