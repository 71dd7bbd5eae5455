"""What every operator command shares: its options (where to ask, `--json`), running it, and
turning any failure into one line on stderr with exit code 1 (never a traceback)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from agentqueue.cli.ops_client import OpsClient, OpsError, open_client

T = TypeVar("T")

Url = Annotated[str | None, typer.Option(
    "--url", envvar="AGENTQUEUE_URL", metavar="URL",
    help="A running service (remote mode), e.g. http://localhost:3000. Unset: Redis and the "
         "records directly if REDIS_URL is set, else http://127.0.0.1:$PORT.")]
Key = Annotated[str | None, typer.Option(
    "--key", envvar="AGENTQUEUE_KEY", metavar="KEY", help="API key for remote mode.")]
AppRef = Annotated[str | None, typer.Option(
    "--app", envvar="AGENTQUEUE_APP", metavar="MODULE:APP",
    help="Direct mode: your agentqueue.App, so its job types and queues are known "
         "(remote mode: the service knows them).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]

# Tables fit a terminal; piped to a file or a pager they keep their columns whole (as keys.py).
console = Console(width=None if sys.stdout.isatty() else 160)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run(url: str | None, key: str | None, app_ref: str | None,
        work: Callable[[OpsClient], Awaitable[T]]) -> T:
    """`work(client)` on the client the options choose; failures as one line."""

    async def main() -> T:
        async with open_client(url, key, app_ref) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line, never a traceback
        fail(describe(exc), exc.code if isinstance(exc, OpsError) else 1)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, without secrets (no URLs with passwords)."""
    import redis.exceptions
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, OpsError | ValueError | LookupError):  # InvalidJobInput, UnknownJobType
        text = str(exc)
    elif isinstance(exc, TimeoutError):
        text = str(exc) or "timed out"
    elif isinstance(exc, redis.exceptions.RedisError | ConnectionError):
        text = f"Redis (REDIS_URL) did not answer: {exc}"
    elif isinstance(exc, SQLAlchemyError):
        text = f"the records database (DATABASE_URL) failed: {type(exc).__name__}: " \
               f"{getattr(exc, 'orig', None) or exc}"
    elif isinstance(exc, RuntimeError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def when(iso: str | None) -> str:
    """An ISO time of the API, in this machine's local time, to the second."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cost(value: float | None) -> str:
    return "-" if value is None else f"${value:,.6f}".rstrip("0").rstrip(".")
