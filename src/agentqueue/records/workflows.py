"""Stored workflow definitions (seed 001's `workflow-execution`): a name and steps, owned as
jobs are. Who may see which is the caller's rule (`can_see`), applied by the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select

from agentqueue.records.models import WorkflowRecord
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner

MAX_LISTED = 1000


class WorkflowView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str | None
    steps: list[dict[str, Any]]
    user_id: str
    org_id: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def owner(self) -> JobOwner:
        return JobOwner(user_id=self.user_id, org_id=self.org_id)


class WorkflowStore:
    def __init__(self, records: Records) -> None:
        self.records = records

    async def create(self, *, name: str, description: str | None, steps: list[dict[str, Any]],
                     owner: JobOwner) -> WorkflowView:
        now = self.records._now()
        row = WorkflowRecord(id=f"wf_{uuid.uuid4().hex}", name=name, description=description,
                             steps=steps, user_id=owner.user_id, org_id=owner.org_id,
                             created_at=now, updated_at=now)
        async with self.records._writing() as session:
            session.add(row)
        return WorkflowView.model_validate(row)

    async def get(self, workflow_id: str) -> WorkflowView | None:
        async with self.records._reads() as session:
            row = await session.get(WorkflowRecord, workflow_id)
            return None if row is None else WorkflowView.model_validate(row)

    async def listed(self, org_id: str | None, *, every_org: bool = False) -> list[WorkflowView]:
        """The workflows of organization `org_id` (those without one for None; with
        `every_org`, all), newest first."""
        query = select(WorkflowRecord)
        if not every_org:
            query = query.where(WorkflowRecord.org_id.is_(None) if org_id is None
                                else WorkflowRecord.org_id == org_id)
        query = query.order_by(WorkflowRecord.created_at.desc()).limit(MAX_LISTED)
        async with self.records._reads() as session:
            return [WorkflowView.model_validate(r) for r in await session.scalars(query)]

    async def replace(self, workflow_id: str, *, name: str, description: str | None,
                      steps: list[dict[str, Any]]) -> WorkflowView | None:
        async with self.records._writing() as session:
            row = await session.get(WorkflowRecord, workflow_id)
            if row is None:
                return None
            row.name, row.description, row.steps = name, description, steps
            row.updated_at = self.records._now()
            view = WorkflowView.model_validate(row)
        return view

    async def delete(self, workflow_id: str) -> bool:
        async with self.records._writing() as session:
            gone = await session.execute(
                delete(WorkflowRecord).where(WorkflowRecord.id == workflow_id))
        return bool(getattr(gone, "rowcount", 0))
