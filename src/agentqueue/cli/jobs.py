"""`agentqueue jobs list | show | submit | wait | cancel | retry | approve | deny`: jobs of
every queue, named `QUEUE:ID` as `/api/jobs` names them, in remote or direct mode (`ops_client`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.json import JSON
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentqueue.cli.ops_client import OpsClient, OpsError, Update
from agentqueue.cli.output import (
    AppRef,
    Json,
    Key,
    Url,
    console,
    cost,
    fail,
    print_json,
    run,
    when,
)

jobs_app = typer.Typer(help="Look at jobs and act on them.", no_args_is_help=True)

STATUSES = ["pending", "active", "awaiting_approval", "completed", "failed", "cancelled"]
# `wait` past its --timeout exits with this code, as GNU `timeout` does.
TIMED_OUT = 124
# Streamed text shown while waiting: the last lines (the whole text is in the result).
TEXT_TAIL_LINES = 20

Ref = Annotated[str, typer.Argument(metavar="QUEUE:ID", help="The job, e.g. ai-jobs:1.")]
Timeout = Annotated[float | None, typer.Option(
    "--timeout", min=0, help="Give up after this many seconds (exit code 124).")]


def _owner(job: dict[str, Any]) -> str:
    user, org = job.get("userId") or "-", job.get("organizationId")
    return f"{user}/{org}" if org else user


def _percent(job: dict[str, Any]) -> str:
    return f"{job['progress']['percentage']:g}%"


@jobs_app.command("list")
def list_jobs(
    queue: Annotated[str | None, typer.Option("--queue", "-q",
                                              help="Only this queue (direct mode).")] = None,
    type_: Annotated[str | None, typer.Option("--type", "-t", help="Only this job type.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", "-s", help=f"Only this status: {', '.join(STATUSES)}.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    url: Url = None, key: Key = None, app_ref: AppRef = None, as_json: Json = False,
) -> None:
    """Jobs newest first, from their records (kept after Redis drops them)."""
    if status is not None and status not in STATUSES:
        fail(f"--status {status!r}: one of {', '.join(STATUSES)}")
    page = run(url, key, app_ref, lambda c: c.list_jobs(
        queue=queue, type_=type_, status=status, limit=limit, offset=offset))
    if as_json:
        print_json(page)
        return
    if not page["jobs"]:
        typer.echo("No jobs." if not page["total"] else
                   f"No jobs past --offset {offset} (there are {page['total']}).")
        return
    table = Table("id", "type", "status", "progress", "attempts", "owner", "created",
                  "finished", title=None)
    for job in page["jobs"]:
        table.add_row(job["id"], job["type"], job["status"], _percent(job),
                      f"{job['attempts']}/{job['maxAttempts']}", _owner(job),
                      when(job["createdAt"]), when(job["completedAt"]))
    console.print(table)
    first = offset + 1
    typer.echo(f"{first}-{offset + len(page['jobs'])} of {page['total']}")


@jobs_app.command()
def show(ref: Ref, url: Url = None, key: Key = None, app_ref: AppRef = None,
         as_json: Json = False) -> None:
    """One job: status, progress, data, result or error, owner, times (direct mode adds its
    tokens and cost, and its record's status history)."""
    job = run(url, key, app_ref, lambda c: c.get_job(ref))
    if as_json:
        print_json(job)
        return
    _print_job(job)


def _print_job(job: dict[str, Any]) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    progress = job["progress"]
    rows = [
        ("id", job["id"]), ("type", job["type"]), ("status", job["status"]),
        ("progress", f"{progress['current']:g}/{progress['total']:g} ({progress['percentage']:g}%)"
                     + (f" {progress['message']}" if progress.get("message") else "")),
        ("attempts", f"{job['attempts']}/{job['maxAttempts']}"), ("priority", str(job["priority"])),
        ("owner", _owner(job)), ("created", when(job["createdAt"])),
        ("started", when(job["startedAt"])), ("finished", when(job["completedAt"])),
    ]
    if job.get("name"):
        rows.insert(2, ("name", job["name"]))
    if job.get("error"):
        rows.append(("error", job["error"]))
    usage = job.get("usage")
    if usage:
        rows.append(("tokens", f"{usage['inputTokens']} in, {usage['outputTokens']} out"))
        rows.append(("cost", cost(usage["costUsd"])))
        if usage.get("model"):
            rows.append(("model", f"{usage.get('provider') or '-'} / {usage['model']}"))
    for name, value in rows:
        facts.add_row(name, Text(str(value)))
    console.print(facts)
    console.print(Text("data", style="bold"))
    console.print(JSON.from_data(job["data"]))
    if job.get("result") is not None:
        console.print(Text("result", style="bold"))
        console.print(JSON.from_data(job["result"]))
    if job.get("history"):
        history = Table("at", "status", "attempt", "message", title="history")
        for event in job["history"]:
            history.add_row(when(event["at"]), event["status"],
                            str(event["attempt"] or "-"), event["message"] or "")
        console.print(history)


@jobs_app.command()
def submit(
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="A job type, e.g. summarize.")],
    data: Annotated[str, typer.Argument(metavar="[DATA]",
                                        help="The job's data as a JSON object.")] = "{}",
    data_file: Annotated[Path | None, typer.Option(
        "--data-file", help="Read the data from this JSON file ('-': stdin).",
        allow_dash=True)] = None,
    priority: Annotated[int | None, typer.Option(
        min=0, max=100, help="0-100, higher runs first, 0 normal (as POST /api/jobs).")] = None,
    attempts: Annotated[int | None, typer.Option(min=1, max=20)] = None,
    delay: Annotated[int, typer.Option(min=0, help="Milliseconds before it may run.")] = 0,
    user: Annotated[str | None, typer.Option(help="Direct mode: the owner's user id.")] = None,
    org: Annotated[str | None, typer.Option(help="Direct mode: the owner's organization.")]
    = None,
    wait: Annotated[bool, typer.Option("--wait", help="Then wait for it, as `jobs wait`.")]
    = False,
    timeout: Timeout = None,
    url: Url = None, key: Key = None, app_ref: AppRef = None, as_json: Json = False,
) -> None:
    """Queue a job (recorded first). Prints its id."""
    payload = _data(data, data_file)

    async def work(client: OpsClient) -> dict[str, Any]:
        job = await client.submit(type_, payload, priority=priority, attempts=attempts,
                                  delay_ms=delay, user=user, org=org)
        if not wait:
            return job
        if not as_json:
            typer.echo(f"Queued {job['id']} ({job['type']})", err=True)
        return await _follow(client, job["id"], timeout, as_json)

    job = run(url, key, app_ref, work)
    if wait:
        _finish(job, as_json)
    elif as_json:
        print_json(job)
    else:
        typer.echo(job["id"])
        typer.echo(f"Queued {job['id']} ({job['type']}, {job['status']}); follow it with: "
                   f"agentqueue jobs wait {job['id']}", err=True)


def _data(text: str, path: Path | None) -> dict[str, Any]:
    if path is not None:
        text = typer.get_text_stream("stdin").read() if str(path) == "-" else _read(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"the job's data is not JSON: {exc}")
    if not isinstance(value, dict):
        fail("the job's data must be a JSON object, e.g. '{\"text\": \"...\"}'")
    return value


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        fail(f"--data-file {path}: {exc.strerror}")


@jobs_app.command("wait")
def wait_for(ref: Ref, timeout: Timeout = None, url: Url = None, key: Key = None,
             app_ref: AppRef = None, as_json: Json = False) -> None:
    """Follow a job until it finishes: a progress bar and its streamed text (on stderr), then
    its result. Exit code 1 if it failed or was cancelled, 124 on --timeout."""
    job = run(url, key, app_ref, lambda c: _follow(c, ref, timeout, as_json))
    _finish(job, as_json)


async def _follow(client: OpsClient, ref: str, timeout: float | None,
                  quiet: bool) -> dict[str, Any]:
    updates = client.follow(ref, timeout)
    try:
        if quiet:
            async for update in updates:
                if update.kind == "done":
                    assert update.job is not None
                    return update.job
        else:
            return await _show_updates(updates)
    except TimeoutError as exc:
        raise OpsError(str(exc) or f"job {ref} did not finish in time", TIMED_OUT) from None
    raise OpsError(f"job {ref}: its updates ended before it finished")


async def _show_updates(updates: AsyncIterator[Update]) -> dict[str, Any]:
    screen = Console(stderr=True)
    if not screen.is_terminal:
        return await _print_updates(updates, screen)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TimeElapsedColumn(), console=screen)
    task = bar.add_task("waiting", total=100)
    text = Text()
    with Live(Group(text, bar), console=screen, refresh_per_second=8) as live:
        async for update in updates:
            if update.progress is not None:
                progress = update.progress
                bar.update(task, total=progress["total"] or 100, completed=progress["current"],
                           description=progress.get("message") or "running")
            if update.kind == "text" and update.text is not None:
                text.plain = "\n".join(update.text.splitlines()[-TEXT_TAIL_LINES:])
            elif update.kind == "retrying":
                live.console.print("an attempt failed; it will run again")
            elif update.kind == "done":
                assert update.job is not None
                done = update.job["status"] == "completed"
                bar.update(task, completed=bar.tasks[0].total if done else None,
                           description=update.job["status"])
                live.refresh()
                return update.job
    raise OpsError("the job's updates ended before it finished")


async def _print_updates(updates: AsyncIterator[Update], screen: Console) -> dict[str, Any]:
    """`wait` writing to a file or a pipe (CI logs): a line per progress update, and the
    streamed text as it grows."""
    shown_text = ""
    mid_line = False  # the streamed text written so far does not end its line
    last: dict[str, Any] | None = None

    def line(message: str) -> None:
        screen.file.write(message + "\n")
        screen.file.flush()

    async for update in updates:
        if update.kind == "text" and update.text is not None:
            text = update.text
            new = text[len(shown_text):] if text.startswith(shown_text) else "\n" + text
            if new:
                screen.file.write(new)
                screen.file.flush()
                mid_line = not new.endswith("\n")
            shown_text = text
            continue
        if mid_line:
            mid_line = False
            line("")
        if update.kind == "progress" and update.progress != last:
            last = update.progress
            progress = update.progress or {}
            line(f"progress {progress.get('current', 0):g}/{progress.get('total', 0):g} "
                 f"({progress.get('percentage', 0):g}%)"
                 + (f" {progress['message']}" if progress.get("message") else ""))
        elif update.kind == "retrying":
            line("an attempt failed; it will run again")
        elif update.kind == "done":
            assert update.job is not None
            line(update.job["status"])
            return update.job
    raise OpsError("the job's updates ended before it finished")


def _finish(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(job)
    elif job.get("result") is not None:
        console.print(JSON.from_data(job["result"]))
    if job["status"] != "completed":
        reason = job.get("error") or job["status"]
        typer.echo(f"error: job {job['id']} {job['status']}: {reason}", err=True)
        raise typer.Exit(1)


@jobs_app.command()
def cancel(ref: Ref, url: Url = None, key: Key = None, app_ref: AppRef = None,
           as_json: Json = False) -> None:
    """Cancel a job that has not finished (an active one is stopped on its worker)."""
    job = run(url, key, app_ref, lambda c: c.cancel(ref))
    if as_json:
        print_json(job)
    else:
        typer.echo(f"Cancelled {job['id']} (now {job['status']}).")


@jobs_app.command()
def retry(ref: Ref, url: Url = None, key: Key = None, app_ref: AppRef = None,
          as_json: Json = False) -> None:
    """Run a failed or cancelled job again, with fresh attempts."""
    job = run(url, key, app_ref, lambda c: c.retry(ref))
    if as_json:
        print_json(job)
    else:
        typer.echo(f"Retrying {job['id']} (now {job['status']}).")


Reason = Annotated[str | None, typer.Option("--reason", help="Why (told to the model on deny).")]


@jobs_app.command()
def approve(ref: Ref, reason: Reason = None, url: Url = None, key: Key = None,
            app_ref: AppRef = None, as_json: Json = False) -> None:
    """Approve the tool call a job awaits (status awaiting_approval): it runs on."""
    _decide(ref, "approve", reason, url, key, app_ref, as_json)


@jobs_app.command()
def deny(ref: Ref, reason: Reason = None, url: Url = None, key: Key = None,
         app_ref: AppRef = None, as_json: Json = False) -> None:
    """Deny the tool call a job awaits: the model is told, and goes on without it."""
    _decide(ref, "deny", reason, url, key, app_ref, as_json)


def _decide(ref: str, decision: str, reason: str | None, url: str | None, key: str | None,
            app_ref: str | None, as_json: bool) -> None:
    job = run(url, key, app_ref, lambda c: c.decide(ref, decision, reason))
    if as_json:
        print_json(job)
    else:
        done = "Approved" if decision == "approve" else "Denied"
        typer.echo(f"{done} the call {job['id']} awaited (now {job['status']}).")
