"""`agentqueue workers`: the worker processes serving each queue, from their heartbeats
(each process writes one about every second; one silent for 30 s is gone)."""

from __future__ import annotations

import typer
from rich.table import Table

from agentqueue.cli.output import AppRef, Json, Key, Url, console, print_json, run

workers_app = typer.Typer(help="Worker processes per queue.")


@workers_app.callback(invoke_without_command=True)
def workers(url: Url = None, key: Key = None, app_ref: AppRef = None,
            as_json: Json = False) -> None:
    """Worker processes per queue; in direct mode each process too (host, pid, its queues,
    when it was last heard from)."""
    found = run(url, key, app_ref, lambda c: c.workers())
    if as_json:
        print_json(found)
        return
    counts = Table("queue", "workers")
    for queue, n in sorted(found["queues"].items()):
        counts.add_row(queue, str(n))
    console.print(counts)
    processes = found.get("workers")
    if processes:
        table = Table("host", "pid", "queues", "last heard")
        for worker in processes:
            table.add_row(worker["host"], str(worker["pid"] or "-"), ", ".join(worker["queues"]),
                          f"{worker['lastSeenSeconds']:g} s ago")
        console.print(table)
    elif processes is None:
        typer.echo("(each process's host and pid: direct mode, with REDIS_URL)", err=True)
