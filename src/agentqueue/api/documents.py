"""The document search index (seed 001's `document-processing` jobs fill it), at
`/api/documents`: search, list, get and delete. An organization sees only its own documents
(a caller without one, only their own); anyone else's answers 404 as if absent.

Documents are added by jobs: `POST /api/jobs` with `"type": "document-processing"`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from agentqueue.ai.providers.base import ProviderError
from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.errors import ApiError
from agentqueue.api.limits import page_limit
from agentqueue.api.schemas.common import MAX_OFFSET, STRICT_INPUT
from agentqueue.core.documents import MAX_RESULTS
from agentqueue.core.lookup import owner_of
from agentqueue.records.documents import DocumentView

router = APIRouter(prefix="/api/documents", tags=["documents (seed 001)"],
                   route_class=EdgeRoute)

MAX_PAGE = 200


class SearchIn(BaseModel):
    model_config = STRICT_INPUT

    query: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    limit: int = Field(5, ge=1, le=MAX_RESULTS, description="how many chunks to return")
    provider: str | None = Field(None, max_length=50,
                                 description="embed the query as the documents were: "
                                             "builtin (default) or openai")
    model: str | None = Field(None, max_length=200)


class Match(BaseModel):
    documentId: str
    title: str | None
    chunk: int = Field(description="the chunk's place in its document, from 0")
    page: int = Field(description="the page it is on, from 1")
    text: str
    score: float = Field(description="cosine similarity to the query, -1 to 1")


class SearchOut(BaseModel):
    query: str
    provider: str
    model: str
    results: list[Match]


class DocumentOut(BaseModel):
    documentId: str
    title: str | None
    contentType: str
    pages: int
    chunks: int
    characters: int
    provider: str
    model: str
    dimensions: int
    metadata: Any | None
    jobId: str | None = Field(description="the job that indexed this version (queue:id)")
    userId: str
    createdAt: datetime
    updatedAt: datetime


class DocumentList(BaseModel):
    documents: list[DocumentOut]
    total: int
    limit: int
    offset: int


def document_out(view: DocumentView) -> DocumentOut:
    return DocumentOut(
        documentId=view.document_id, title=view.title, contentType=view.content_type,
        pages=view.pages, chunks=view.chunk_count, characters=view.characters,
        provider=view.provider, model=view.embedding_model, dimensions=view.dimensions,
        metadata=view.meta, jobId=view.job_ref, userId=view.user_id,
        createdAt=view.created_at, updatedAt=view.updated_at)


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, services: ServicesDep, caller: Caller) -> SearchOut:
    """The chunks of your documents closest in meaning to `query`, best first."""
    try:
        found = await services.documents().search(
            owner_of(caller), body.query, limit=body.limit, provider=body.provider,
            model=body.model)
    except ProviderError as exc:
        if exc.retryable:
            raise ApiError(503, "the embedding provider is unavailable; try again") from None
        raise ApiError(400, f"provider: {exc}") from None
    return SearchOut(query=found.query, provider=found.provider, model=found.model, results=[
        Match(documentId=m.document_id, title=m.title, chunk=m.ordinal, page=m.page,
              text=m.text, score=m.score) for m in found.matches])


@router.get("", response_model=DocumentList)
async def list_documents(
    services: ServicesDep, caller: Caller,
    limit: Annotated[int, Query()] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DocumentList:
    """Your documents, the most recently processed first."""
    limit = page_limit(limit, MAX_PAGE)
    views, total = await services.documents().list_documents(owner_of(caller), limit=limit,
                                                   offset=offset)
    return DocumentList(documents=[document_out(v) for v in views], total=total, limit=limit,
                        offset=offset)


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document_id: str, services: ServicesDep, caller: Caller) -> DocumentOut:
    view = await services.documents().get(owner_of(caller), document_id)
    if view is None:
        raise ApiError(404, f"document {document_id!r} not found")
    return document_out(view)


@router.delete("/{document_id}", status_code=204)
async def delete_document(document_id: str, services: ServicesDep, caller: Caller) -> Response:
    """Remove the document and its chunks from the index."""
    if not await services.documents().delete(owner_of(caller), document_id):
        raise ApiError(404, f"document {document_id!r} not found")
    return Response(status_code=204)
