"""The document search index in SQL: documents and their chunks with embeddings, per scope
(an organization, or a user without one). Processing a document again replaces its chunks in
one transaction, so a search sees the old version or the new one, never a mix.

Search reads the scope's chunk vectors of one embedding model in batches and ranks them with
numpy (`documents.ranking`): no vector extension loads here (see that module).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from agentqueue.documents.ranking import TopMatches, to_bytes
from agentqueue.records.models import DocumentChunk, DocumentRecord
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner

_CHUNKS = cast(Table, DocumentChunk.__table__)
SEARCH_BATCH = 2_000


def scope_of(owner: JobOwner) -> str:
    """Whose documents these are: the organization's, else the user's own."""
    return f"org:{owner.org_id}" if owner.org_id else f"user:{owner.user_id}"


class DocumentView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    document_id: str
    user_id: str
    org_id: str | None
    title: str | None
    content_type: str
    pages: int
    chunk_count: int
    characters: int
    provider: str
    embedding_model: str
    dimensions: int
    meta: Any | None
    job_ref: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    page: int
    text: str
    vector: Sequence[float]


@dataclass(frozen=True)
class ChunkMatch:
    document_id: str
    title: str | None
    ordinal: int
    page: int
    text: str
    score: float


@dataclass(frozen=True)
class StoredDocument:
    document: DocumentView
    replaced: bool  # an earlier version was there


class DocumentIndex:
    """Documents and chunks on the records' database (one per process, shares its pool)."""

    def __init__(self, records: Records) -> None:
        self._records = records

    async def replace(
        self, owner: JobOwner, document_id: str, *, title: str | None, content_type: str,
        pages: int, characters: int, provider: str, embedding_model: str,
        chunks: Sequence[NewChunk], meta: Any = None, job_ref: str | None = None,
    ) -> StoredDocument:
        """Store the document and its chunks, replacing any earlier version's."""
        try:
            return await self._replace(owner, document_id, title, content_type, pages,
                                       characters, provider, embedding_model, chunks, meta,
                                       job_ref)
        except IntegrityError:
            # Another job stored the same document between our read and our insert: now it
            # exists, and this one replaces it.
            return await self._replace(owner, document_id, title, content_type, pages,
                                       characters, provider, embedding_model, chunks, meta,
                                       job_ref)

    async def _replace(
        self, owner: JobOwner, document_id: str, title: str | None, content_type: str,
        pages: int, characters: int, provider: str, embedding_model: str,
        chunks: Sequence[NewChunk], meta: Any, job_ref: str | None,
    ) -> StoredDocument:
        scope = scope_of(owner)
        now = self._records._now()
        dimensions = len(chunks[0].vector) if chunks else 0
        fields = dict(user_id=owner.user_id, org_id=owner.org_id, title=title,
                      content_type=content_type, pages=pages, chunk_count=len(chunks),
                      characters=characters, provider=provider,
                      embedding_model=embedding_model, dimensions=dimensions, meta=meta,
                      job_ref=job_ref, updated_at=now)
        async with self._records._writing() as session:
            found = (await session.execute(
                select(DocumentRecord).where(DocumentRecord.scope == scope,
                                             DocumentRecord.document_id == document_id)
                .with_for_update()
            )).scalar_one_or_none()
            replaced = found is not None
            if found is None:
                found = DocumentRecord(scope=scope, document_id=document_id, created_at=now,
                                       **fields)
                session.add(found)
                await session.flush()
            else:
                await session.execute(delete(DocumentChunk)
                                      .where(DocumentChunk.document_pk == found.id))
                for name, value in fields.items():
                    setattr(found, name, value)
            if chunks:
                await session.execute(insert(_CHUNKS), [
                    {"document_pk": found.id, "scope": scope, "embedding_model": embedding_model,
                     "ordinal": c.ordinal, "page": c.page, "text": c.text,
                     "embedding": to_bytes(c.vector)}
                    for c in chunks
                ])
            await session.flush()
            view = DocumentView.model_validate(found)
        return StoredDocument(view, replaced)

    async def get(self, owner: JobOwner, document_id: str) -> DocumentView | None:
        async with self._records._reads() as session:
            found = (await session.execute(select(DocumentRecord).where(
                DocumentRecord.scope == scope_of(owner),
                DocumentRecord.document_id == document_id))).scalar_one_or_none()
            return None if found is None else DocumentView.model_validate(found)

    async def list_documents(self, owner: JobOwner, *, limit: int = 50,
                   offset: int = 0) -> tuple[list[DocumentView], int]:
        """The scope's documents, most recently processed first, and how many there are."""
        scope = scope_of(owner)
        async with self._records._reads() as session:
            rows = (await session.execute(
                select(DocumentRecord).where(DocumentRecord.scope == scope)
                .order_by(DocumentRecord.updated_at.desc(), DocumentRecord.id.desc())
                .limit(limit).offset(offset))).scalars().all()
            total = (await session.execute(select(func.count()).select_from(DocumentRecord)
                                           .where(DocumentRecord.scope == scope))).scalar_one()
            return [DocumentView.model_validate(r) for r in rows], int(total)

    async def delete(self, owner: JobOwner, document_id: str) -> bool:
        async with self._records._writing() as session:
            result = await session.execute(delete(DocumentRecord).where(
                DocumentRecord.scope == scope_of(owner),
                DocumentRecord.document_id == document_id))
            return bool(getattr(result, "rowcount", 0))

    async def search(self, owner: JobOwner, query: Sequence[float], *, embedding_model: str,
                     limit: int = 5) -> list[ChunkMatch]:
        """The scope's `limit` chunks closest to `query` (cosine), best first, among those
        embedded with `embedding_model` (vectors of other models are not comparable)."""
        scope = scope_of(owner)
        top = TopMatches(query, limit)
        statement = (
            select(DocumentChunk.id, DocumentChunk.embedding)
            .where(DocumentChunk.scope == scope,
                   DocumentChunk.embedding_model == embedding_model)
            .order_by(DocumentChunk.id)
        )
        last = 0
        async with self._records._reads() as session:
            while True:  # keyset pages: memory bounded by the batch, not the index
                batch = (await session.execute(
                    statement.where(DocumentChunk.id > last).limit(SEARCH_BATCH))).all()
                if not batch:
                    break
                top.add((row.id, bytes(row.embedding)) for row in batch)
                last = batch[-1].id
            best = top.best()
            if not best:
                return []
            ids = [chunk_id for chunk_id, _ in best]
            rows = {row.id: row for row in (await session.execute(
                select(DocumentChunk.id, DocumentChunk.ordinal, DocumentChunk.page,
                       DocumentChunk.text, DocumentRecord.document_id, DocumentRecord.title)
                .join(DocumentRecord, DocumentRecord.id == DocumentChunk.document_pk)
                .where(DocumentChunk.id.in_(ids)))).all()}
        return [ChunkMatch(rows[i].document_id, rows[i].title, rows[i].ordinal, rows[i].page,
                           rows[i].text, round(score, 6))
                for i, score in best if i in rows]
