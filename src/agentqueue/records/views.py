"""What the records hand back to callers: Pydantic models, never ORM objects."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobOwner(BaseModel):
    user_id: str
    org_id: str | None = None


# The owner of a job that a plain BullMQ producer added (bypassing our APIs): nobody. No caller
# can have an empty user id (API keys and JWT subjects are non-empty), so only admins see it.
NO_OWNER = JobOwner(user_id="", org_id=None)


class JobRecordView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    queue: str
    job_id: str
    type: str
    name: str | None
    description: str | None
    status: str
    data: Any
    result: Any | None
    error: str | None
    progress: Any | None
    attempts_made: int
    max_attempts: int
    priority: int
    user_id: str
    org_id: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    provider: str | None
    model: str | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    version: int = 0
    submitting_until: datetime | None = None

    @property
    def owner(self) -> JobOwner:
        return JobOwner(user_id=self.user_id, org_id=self.org_id)


class JobEventView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job_pk: int
    status: str
    attempt: int | None
    message: str | None
    at: datetime


class ApiKeyView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    prefix: str
    user_id: str
    org_id: str | None
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class UsageRow(BaseModel):
    day: date
    model: str | None
    type: str
    jobs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
