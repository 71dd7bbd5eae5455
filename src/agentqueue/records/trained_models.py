"""Trained classifiers in SQL (table `trained_models`), per owner.

An organization's models are its members'; a caller without an organization sees only the
models it trained without one. A model the caller may not see is answered as absent.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from agentqueue.records.db import writer
from agentqueue.records.models import TrainedModel
from agentqueue.records.store import utc_now
from agentqueue.records.views import JobOwner

ID_PREFIX = "tm_"
# What `new_model_id` makes: anything else names no model, and is never sent to the database
# (PostgreSQL refuses some strings, NUL characters say, with an error instead of no row).
_MODEL_ID = re.compile(r"tm_[0-9a-f]{24}")


class TrainedModelView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    user_id: str
    org_id: str | None
    kind: str
    labels: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    source_job: str
    created_at: datetime


def new_model_id() -> str:
    return ID_PREFIX + secrets.token_hex(12)


def _visible_to(owner: JobOwner) -> ColumnElement[bool]:
    if owner.org_id is not None:
        return TrainedModel.org_id == owner.org_id
    return (TrainedModel.org_id.is_(None)) & (TrainedModel.user_id == owner.user_id)


class TrainedModels:
    """The trained models of one records database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)

    async def save(self, owner: JobOwner, *, source_job: str, kind: str, labels: list[str],
                   params: dict[str, Any], metrics: dict[str, Any],
                   name: str | None = None) -> TrainedModelView:
        """Store a model; the job that trained it saving again (a retry) replaces its own,
        keeping its id."""
        async with self._writes() as session, session.begin():
            row = await session.scalar(
                select(TrainedModel).where(TrainedModel.source_job == source_job))
            if row is None:
                row = TrainedModel(id=new_model_id(), source_job=source_job)
                session.add(row)
            row.name, row.user_id, row.org_id = name, owner.user_id, owner.org_id
            row.kind, row.labels, row.params, row.metrics = kind, labels, params, metrics
            row.created_at = utc_now()
            await session.flush()
            return TrainedModelView.model_validate(row)

    async def get(self, owner: JobOwner, model_id: str) -> TrainedModelView | None:
        if not _MODEL_ID.fullmatch(model_id):
            return None
        async with self._reads() as session:
            row = await session.scalar(select(TrainedModel).where(
                TrainedModel.id == model_id, _visible_to(owner)))
            return None if row is None else TrainedModelView.model_validate(row)

    async def list_models(self, owner: JobOwner, *, limit: int = 100,
                   offset: int = 0) -> list[TrainedModelView]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(TrainedModel).where(_visible_to(owner))
                .order_by(TrainedModel.created_at.desc(), TrainedModel.id)
                .limit(limit).offset(offset))
            return [TrainedModelView.model_validate(r) for r in rows]

    async def delete(self, owner: JobOwner, model_id: str) -> bool:
        if not _MODEL_ID.fullmatch(model_id):
            return False
        async with self._writes() as session, session.begin():
            done = await session.execute(delete(TrainedModel).where(
                TrainedModel.id == model_id, _visible_to(owner)))
            return bool(getattr(done, "rowcount", 0))
