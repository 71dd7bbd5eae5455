"""Seed 001's `document-processing` job: a document (text, Markdown, HTML, PDF, DOCX) read to
text, cut into chunks, embedded, and stored in its owner's search index (records.documents),
replacing any earlier version of the same `documentId`. Search it with
`POST /api/documents/search` or `App.search_documents`.

Progress counts pages read, then chunks embedded: current/total over both, so it only grows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentqueue.context import Context
from agentqueue.core.documents import DEFAULT_MODEL, DEFAULT_PROVIDER
from agentqueue.documents import extract
from agentqueue.documents.chunks import DEFAULT_OVERLAP, DEFAULT_WORDS, chunk_pages
from agentqueue.engine.worker import PermanentJobError
from agentqueue.handlers.ai_runtime import guarded, usage_fields
from agentqueue.handlers.inputs import JobInput
from agentqueue.records.documents import DocumentIndex, NewChunk
from agentqueue.records.views import NO_OWNER
from agentqueue.registry import DEFAULT_QUEUE, JobRegistry

DOCUMENT_PROCESSING = "document-processing"
# Inline content: up to 10 MB of text, or of base64 (7.5 MB of PDF or DOCX).
MAX_CONTENT = 10_000_000
EMBED_BATCH = 16

jobs = JobRegistry()


class DocumentInput(JobInput):
    """A document to index: its content inline, as text or base64."""

    documentId: str = Field(
        min_length=1, max_length=200, pattern=r"\S",
        description="the document's name in its owner's index; processing the same name "
                    "again replaces it")
    content: str = Field(min_length=1, max_length=MAX_CONTENT,
                         description="the document: text, or base64 for PDF and DOCX")
    contentType: str = Field(
        "text/plain",
        description="text/plain, text/markdown, text/html, application/pdf, "
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document, "
                    "or text, markdown, html, pdf, docx")
    encoding: Literal["text", "base64"] | None = Field(
        None, description="how `content` is given; default text, base64 for PDF and DOCX")
    title: str | None = Field(None, max_length=500)
    metadata: dict[str, Any] | None = Field(None, description="kept with the document")
    chunkWords: int = Field(DEFAULT_WORDS, ge=20, le=400, description="words per chunk")
    chunkOverlap: int = Field(DEFAULT_OVERLAP, ge=0, le=200,
                              description="words a chunk repeats from the one before")
    provider: str | None = Field(None, description="embeddings by builtin (default: the "
                                 "offline all-MiniLM-L6-v2) or openai")

    @field_validator("contentType")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return extract.content_type(value)

    @model_validator(mode="after")
    def _decodable(self) -> DocumentInput:
        binary = self.contentType in extract.BINARY_TYPES
        if self.encoding is None:
            self.encoding = "base64" if binary else "text"
        if binary and self.encoding != "base64":
            raise ValueError(f"{self.contentType} content must be given as base64")
        if self.encoding == "base64":
            self.raw()  # refused now if it is not base64
        if self.chunkOverlap >= self.chunkWords:
            raise ValueError("chunkOverlap must be smaller than chunkWords")
        return self

    def raw(self) -> bytes:
        if self.encoding != "base64":
            return self.content.encode("utf-8")
        try:
            return base64.b64decode(self.content, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content is not valid base64") from None


@jobs.job(DOCUMENT_PROCESSING, queue=DEFAULT_QUEUE)
async def process_document(ctx: Context, data: DocumentInput) -> dict[str, Any]:
    records = ctx.resources.runtime.records if ctx.resources is not None else None
    if records is None:
        raise PermanentJobError("document-processing needs the records database (DATABASE_URL)")
    index = ctx.shared("document-index", lambda: DocumentIndex(records))
    try:
        pages = await asyncio.to_thread(extract.pages_of, data.raw(), data.contentType)
    except extract.DocumentError as exc:
        raise PermanentJobError(str(exc)) from None
    chunks = chunk_pages(pages, words=data.chunkWords, overlap=data.chunkOverlap)
    if not chunks:  # retrying cannot find text that is not there
        raise PermanentJobError("the document has no text to index (a scanned PDF holds only "
                                "images: run OCR on it first)")
    total = len(pages) + len(chunks)
    await ctx.progress(current=len(pages), total=total,
                       message=f"Read {len(pages)} page(s); {len(chunks)} chunk(s) to embed")
    provider = ctx.ai.provider(data.provider or DEFAULT_PROVIDER)
    model = data.model or (DEFAULT_MODEL if provider.name == "builtin" else None)
    vectors: list[list[float]] = []
    embedding_model = ""
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start:start + EMBED_BATCH]
        result = await guarded(provider.embed([c.text for c in batch], model=model))
        vectors.extend(result.vectors)
        embedding_model = result.model
        done = start + len(batch)
        await ctx.progress(current=len(pages) + done, total=total,
                           message=f"Embedded chunk {done} of {len(chunks)}")
    owner = await ctx.owner() or NO_OWNER
    stored = await index.replace(
        owner, data.documentId, title=data.title, content_type=data.contentType,
        pages=len(pages), characters=sum(len(p) for p in pages), provider=provider.name,
        embedding_model=embedding_model, meta=data.metadata, job_ref=f"{ctx.queue}:{ctx.id}",
        chunks=[NewChunk(c.ordinal, c.page, c.text, v) for c, v in zip(chunks, vectors,
                                                                        strict=True)],
    )
    await ctx.progress(current=total, total=total, message=f"Indexed {len(chunks)} chunk(s)")
    doc = stored.document
    return {
        "documentId": doc.document_id,
        "title": doc.title,
        "contentType": doc.content_type,
        "pages": doc.pages,
        "chunks": doc.chunk_count,
        "characters": doc.characters,
        "replaced": stored.replaced,
        "provider": doc.provider,
        "model": doc.embedding_model,
        "dimensions": doc.dimensions,
        **usage_fields(await ctx.usage()),
    }
