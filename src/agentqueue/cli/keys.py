"""`agentqueue keys create | list | revoke`: the API keys the HTTP API accepts.

A key is printed once, at creation; only its hash is stored. Send it as
`Authorization: Bearer <key>`. While no key exists the API serves requests from this machine
only (protected mode); the first key switches every request to needing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer

from agentqueue.config import get_settings

T = TypeVar("T")

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _run(operation: Callable[..., Awaitable[T]]) -> T:
    """Migrate the records database, then run `operation(records)` on it."""
    from agentqueue.records.migrations import upgrade
    from agentqueue.records.store import Records

    url = get_settings().records_url

    async def main() -> T:
        await upgrade(url)
        records = await Records.connect(url)
        try:
            return await operation(records)
        finally:
            await records.close()

    return asyncio.run(main())


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        if value.tzinfo is None:  # stored as UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")  # this machine's local time
    return str(value)


@keys_app.command()
def create(
    user: str = typer.Option(..., "--user", help="User id the key acts as (owner of its jobs)."),
    org: str = typer.Option(..., "--org", help="Organization id of that user."),
    admin: bool = typer.Option(False, "--admin", help="An admin key: sees every job."),
) -> None:
    """Create a key and print it. It is shown once: store it now."""
    if not user.strip() or not org.strip():
        raise typer.BadParameter("--user and --org must not be empty")
    plaintext, view = _run(
        lambda records: records.create_api_key(user_id=user, org_id=org, is_admin=admin)
    )
    typer.echo(plaintext)
    kind = "admin key" if view.is_admin else "key"
    typer.echo(
        f"Created {kind} {view.id} ({view.prefix}) for user {view.user_id} in org {view.org_id}. "
        "Store it now: it won't be shown again. "
        "Send it as 'Authorization: Bearer <key>'.",
        err=True,
    )


@keys_app.command("list")
def list_keys() -> None:
    """List keys (their prefix, never the key)."""
    keys = _run(lambda records: records.list_api_keys())
    if not keys:
        typer.echo("No API keys: the API serves only this machine (protected mode).")
        typer.echo("Create one with: agentqueue keys create --user USER --org ORG")
        return
    from rich.console import Console  # only this command prints a table
    from rich.table import Table

    table = Table("id", "prefix", "user", "org", "admin", "created", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.prefix,
            key.user_id,
            key.org_id or "-",
            "yes" if key.is_admin else "no",
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
        )
    Console(width=160).print(table)


@keys_app.command()
def revoke(
    key: str = typer.Argument(
        ..., metavar="KEY_OR_ID", help="The key's id, its prefix (as listed), or the key itself."
    ),
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    revoked = _run(lambda records: records.revoke_api_key(key))
    if not revoked:
        typer.echo(f"No active key matches {key!r} (see `agentqueue keys list`).", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked {key}.")
