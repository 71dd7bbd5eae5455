"""Declarative models of the job records: jobs, their status history, API keys.

Every timestamp is set by the application (never by the database clock) and comes back as a
timezone-aware UTC `datetime` on every dialect: SQLite has no time zones, so `UTCDateTime` stores
naive UTC there and puts the zone back on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

# `awaiting`: parked until a person approves a tool call (`core.approvals`).
STATUSES: tuple[str, ...] = ("pending", "queued", "active", "awaiting", "completed", "failed",
                             "cancelled")
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

# Names every constraint and index the same way in the models and in the migrations, so
# autogenerate compares like with like on both dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect (naive UTC in SQLite's text column)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: records store aware UTC datetimes only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Fixed-width text, so comparisons and ORDER BY stay chronological.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONDocument(TypeDecorator[Any]):
    """JSON everywhere, JSONB on PostgreSQL. Picked per dialect when a statement is compiled,
    rather than `JSON().with_variant(JSONB(), "postgresql")`: naming JSONB here would import the
    whole PostgreSQL dialect (~100 ms of every start) in processes that only use SQLite."""

    impl = JSON
    cache_ok = True

    def __init__(self, *, none_as_null: bool = False) -> None:
        super().__init__(none_as_null=none_as_null)
        self.none_as_null = none_as_null
        # As JSON's own flag: without none_as_null, a Python None is stored as JSON null (the
        # ORM asks the column's type, which is this decorator, not its JSON).
        self.should_evaluate_none = not none_as_null

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=self.none_as_null))
        return dialect.type_descriptor(JSON(none_as_null=self.none_as_null))


def json_type(*, none_as_null: bool = False) -> JSONDocument:
    """JSON everywhere, JSONB on PostgreSQL."""
    return JSONDocument(none_as_null=none_as_null)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(20, 10, asdecimal=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobRecord(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("queue", "job_id"),
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_jobs_org_id_created_at", "org_id", "created_at"),
        Index("ix_jobs_queue_status", "queue", "status"),
        Index("ix_jobs_type", "type"),
        Index("ix_jobs_status_updated_at", "status", "updated_at"),
        # A tenant's unfinished jobs, counted on every submission (MAX_TENANT_BACKLOG).
        Index("ix_jobs_org_id_status", "org_id", "status"),
        Index("ix_jobs_user_id_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String())
    job_id: Mapped[str] = mapped_column(String())
    type: Mapped[str] = mapped_column(String())
    name: Mapped[str | None] = mapped_column(String())
    description: Mapped[str | None] = mapped_column(Text())
    status: Mapped[str] = mapped_column(String(16))
    data: Mapped[Any] = mapped_column(json_type())
    result: Mapped[Any | None] = mapped_column(json_type(none_as_null=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text())
    progress: Mapped[Any | None] = mapped_column(json_type(none_as_null=True), nullable=True)
    attempts_made: Mapped[int] = mapped_column(Integer(), default=0)
    max_attempts: Mapped[int] = mapped_column(Integer(), default=1)
    priority: Mapped[int] = mapped_column(Integer(), default=0)
    user_id: Mapped[str] = mapped_column(String())
    org_id: Mapped[str | None] = mapped_column(String())
    input_tokens: Mapped[int] = mapped_column(BigInteger(), default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger(), default=0)
    cost_usd: Mapped[float] = mapped_column(Money, default=0.0)
    provider: Mapped[str | None] = mapped_column(String())
    model: Mapped[str | None] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Compare-and-set token: every status write adds one, so a writer that read the record can
    # tell whether anyone moved it since (see Records.claim).
    version: Mapped[int] = mapped_column(Integer(), default=0, server_default=text("0"))
    # While set and in the future, a submitter (or the repair service) is putting the job into
    # Redis: nobody else may queue it.
    submitting_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_pk_id", "job_pk", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(BigInteger(), ForeignKey("jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int | None] = mapped_column(Integer())
    message: Mapped[str | None] = mapped_column(Text())
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[str] = mapped_column(String())
    org_id: Mapped[str | None] = mapped_column(String())
    is_admin: Mapped[bool] = mapped_column(Boolean(), default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DocumentRecord(Base):
    """A document of the search index (`document-processing`), one per (scope, document_id):
    processing it again replaces it. `scope` is whose it is: `org:<id>`, or `user:<id>` for a
    caller without an organization."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("scope", "document_id"),
        Index("ix_documents_scope_updated_at", "scope", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String())
    document_id: Mapped[str] = mapped_column(String())
    user_id: Mapped[str] = mapped_column(String())
    org_id: Mapped[str | None] = mapped_column(String())
    title: Mapped[str | None] = mapped_column(String())
    content_type: Mapped[str] = mapped_column(String())
    pages: Mapped[int] = mapped_column(Integer())
    chunk_count: Mapped[int] = mapped_column(Integer())
    characters: Mapped[int] = mapped_column(Integer())
    provider: Mapped[str] = mapped_column(String())
    embedding_model: Mapped[str] = mapped_column(String())
    dimensions: Mapped[int] = mapped_column(Integer())
    meta: Mapped[Any | None] = mapped_column(json_type(none_as_null=True), nullable=True)
    job_ref: Mapped[str | None] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DocumentChunk(Base):
    """A chunk of a document's text and its embedding (unit-length little-endian float32).
    `scope` and `embedding_model` are the document's, copied so a search reads one table."""

    __tablename__ = "document_chunks"
    __table_args__ = (
        Index("ix_document_chunks_scope_embedding_model", "scope", "embedding_model"),
        Index("ix_document_chunks_document_pk_ordinal", "document_pk", "ordinal"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    document_pk: Mapped[int] = mapped_column(
        BigInteger(), ForeignKey("documents.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String())
    embedding_model: Mapped[str] = mapped_column(String())
    ordinal: Mapped[int] = mapped_column(Integer())
    page: Mapped[int] = mapped_column(Integer())
    text: Mapped[str] = mapped_column(Text())
    embedding: Mapped[bytes] = mapped_column(LargeBinary())


class TrainedModel(Base):
    """A classifier a `model-training` job trained: its numbers as JSON (never a pickle), owned
    like the job that trained it."""

    __tablename__ = "trained_models"
    __table_args__ = (Index("ix_trained_models_org_id_user_id", "org_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String())
    org_id: Mapped[str | None] = mapped_column(String())
    kind: Mapped[str] = mapped_column(String(40))
    labels: Mapped[Any] = mapped_column(json_type())
    params: Mapped[Any] = mapped_column(json_type())
    metrics: Mapped[Any] = mapped_column(json_type())
    # `<queue>:<job id>` of the job that trained it: a retried job replaces its own model.
    source_job: Mapped[str] = mapped_column(String(), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkflowRecord(Base):
    """A stored workflow definition (seed 001's `workflow-execution`), owned as jobs are."""

    __tablename__ = "workflows"
    __table_args__ = (
        Index("ix_workflows_user_id_created_at", "user_id", "created_at"),
        Index("ix_workflows_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String())
    description: Mapped[str | None] = mapped_column(Text())
    steps: Mapped[Any] = mapped_column(json_type())
    user_id: Mapped[str] = mapped_column(String())
    org_id: Mapped[str | None] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
