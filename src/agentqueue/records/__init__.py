"""Durable job records in SQL: who owns a job, its status history, result, usage and cost;
and the API keys. SQLite (aiosqlite) by default, PostgreSQL (asyncpg) in production.

    await upgrade(url)                       # on start: migrations.upgrade (connect never migrates)
    records = await Records.connect(url)
    view = await records.create_job(queue=..., job_id=..., type=..., data=..., owner=JobOwner(...))
"""

from agentqueue.records.db import async_url
from agentqueue.records.migrations import upgrade
from agentqueue.records.models import STATUSES, TERMINAL
from agentqueue.records.store import JobExistsError, Records
from agentqueue.records.views import ApiKeyView, JobEventView, JobOwner, JobRecordView, UsageRow

__all__ = [
    "STATUSES",
    "TERMINAL",
    "ApiKeyView",
    "JobEventView",
    "JobExistsError",
    "JobOwner",
    "JobRecordView",
    "Records",
    "UsageRow",
    "async_url",
    "upgrade",
]
