"""`agentqueue usage`: tokens and cost of finished jobs from their records, by day, model and
job type (or any of them), for everyone or one organization."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from agentqueue.cli.ops_client import OpsClient, OpsError
from agentqueue.cli.output import AppRef, Json, Key, Url, console, cost, fail, print_json, run

usage_app = typer.Typer(help="Tokens and cost by day, model and job type.")

DIMENSIONS = ("day", "model", "type", "org")
# The rows' key of each dimension (the HTTP API's names).
FIELDS = {"day": "day", "model": "model", "type": "type", "org": "organizationId"}


def grouped(rows: list[dict[str, Any]], by: list[str]) -> list[dict[str, Any]]:
    """The API's rows (one per day, model and type) summed over the dimensions not in `by`."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {"jobs": 0, "inputTokens": 0, "outputTokens": 0, "costUsd": 0.0})
    for row in rows:
        key = tuple(row.get(FIELDS.get(d, d)) for d in by)
        total = sums[key]
        for field in ("jobs", "inputTokens", "outputTokens", "costUsd"):
            total[field] += row[field]
    out = [{**dict(zip(by, key, strict=True)), **total, "costUsd": round(total["costUsd"], 8)}
           for key, total in sums.items()]
    out.sort(key=lambda r: tuple(str(r[d] or "") for d in by))
    return out


@usage_app.callback(invoke_without_command=True)
def usage(
    since: Annotated[str | None, typer.Option(
        metavar="YYYY-MM-DD", help="First day (UTC) counted.")] = None,
    days: Annotated[int | None, typer.Option(
        min=1, help="The last N days, today included (instead of --since).")] = None,
    by: Annotated[str, typer.Option(
        help="Group by these, comma-separated: day, model, type, org (org: direct mode).")]
    = "day,model,type",
    org: Annotated[str | None, typer.Option(
        help="One organization's usage (remote mode: admins, or that org's admins).")] = None,
    url: Url = None, key: Key = None, app_ref: AppRef = None, as_json: Json = False,
) -> None:
    """Tokens and cost of finished jobs (remote mode: the key's own, an org admin's
    organization, everyone's for an admin)."""
    dimensions = [d.strip() for d in by.split(",") if d.strip()]
    wrong = [d for d in dimensions if d not in DIMENSIONS]
    if wrong or len(set(dimensions)) != len(dimensions):
        fail(f"--by {by!r}: a comma-separated choice of {', '.join(DIMENSIONS)}")
    first = _first_day(since, days)

    async def work(client: OpsClient) -> dict[str, Any]:
        found = await client.usage(since=first, org=org)
        if "org" in dimensions and any("organizationId" not in r for r in found["usage"]):
            raise OpsError("--by org needs direct mode (REDIS_URL): GET /api/usage does not "
                           "break usage down by organization; --org ORG shows one")
        return found

    found = run(url, key, app_ref, work)
    rows = grouped(found["usage"], dimensions)
    if as_json:
        print_json({"usage": rows, "totals": found["totals"]})
        return
    if not rows:
        typer.echo("No usage recorded" + (f" since {first}" if first else "") + ".")
        return
    table = Table(*dimensions, "jobs", "input tokens", "output tokens", "cost (USD)")
    for row in rows:
        table.add_row(*(str(row[d] or "-") for d in dimensions), str(row["jobs"]),
                      f"{row['inputTokens']:,}", f"{row['outputTokens']:,}",
                      cost(row["costUsd"]))
    totals = found["totals"]
    table.add_section()
    table.add_row("total", *([""] * (len(dimensions) - 1)), str(totals["jobs"]),
                  f"{totals['inputTokens']:,}", f"{totals['outputTokens']:,}",
                  cost(totals["costUsd"]))
    console.print(table)


def _first_day(since: str | None, days: int | None) -> date | None:
    if since is not None and days is not None:
        fail("give --since or --days, not both")
    if days is not None:
        return datetime.now(UTC).date() - timedelta(days=days - 1)
    if since is None:
        return None
    try:
        return date.fromisoformat(since)
    except ValueError:
        fail(f"--since {since!r}: a day as YYYY-MM-DD")
