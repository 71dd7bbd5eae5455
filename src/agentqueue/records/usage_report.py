"""Finished jobs' tokens and cost by UTC day, model, type and organization: `Records.usage`'s
rows with the organization kept apart (the CLI's `usage --by org`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from agentqueue.records.models import JobRecord
from agentqueue.records.store import Records, utc_day


async def usage_by_org(records: Records, *, since: date | None = None,
                       org_id: str | None = None) -> list[dict[str, Any]]:
    """One row per day, model, type and organization (None: jobs without one), as the HTTP
    API's usage rows plus `organizationId`; ordered by day, model, type, organization."""
    day = utc_day(JobRecord.finished_at).label("day")
    conditions: list[ColumnElement[bool]] = [JobRecord.finished_at.is_not(None)]
    if since is not None:
        conditions.append(JobRecord.finished_at >= datetime.combine(since, time(), UTC))
    if org_id is not None:
        conditions.append(JobRecord.org_id == org_id)
    statement = (
        select(day, JobRecord.model, JobRecord.type, JobRecord.org_id, func.count(),
               func.sum(JobRecord.input_tokens), func.sum(JobRecord.output_tokens),
               func.sum(JobRecord.cost_usd))
        .where(*conditions)
        .group_by(day, JobRecord.model, JobRecord.type, JobRecord.org_id))
    async with async_sessionmaker(records.engine)() as session:
        found = (await session.execute(statement)).all()
    rows = [
        {"day": (value if isinstance(value, date) else date.fromisoformat(str(value))
                 ).isoformat(),
         "model": model, "type": type_, "organizationId": org, "jobs": int(jobs),
         "inputTokens": int(tokens_in or 0), "outputTokens": int(tokens_out or 0),
         "costUsd": round(float(cost or 0.0), 8)}
        for value, model, type_, org, jobs, tokens_in, tokens_out, cost in found]
    rows.sort(key=lambda r: (r["day"], r["model"] or "", r["type"], r["organizationId"] or ""))
    return rows
