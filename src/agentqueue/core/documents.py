"""Searching an owner's documents: the query embedded with the model the documents were
embedded with, then ranked by the index (records.documents). One path for the HTTP API and the
Python API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agentqueue.ai.embeddings import MODEL_NAME
from agentqueue.ai.providers.base import Provider
from agentqueue.records.documents import ChunkMatch, DocumentIndex, DocumentView
from agentqueue.records.views import JobOwner

# Documents are embedded offline by default, whatever AI_PROVIDER says: the index must hold
# vectors of one model to be searchable, and this one needs no key.
DEFAULT_PROVIDER = "builtin"
DEFAULT_MODEL = MODEL_NAME
MAX_RESULTS = 50


@dataclass(frozen=True)
class SearchResult:
    query: str
    provider: str
    model: str
    matches: list[ChunkMatch] = field(default_factory=list)


class Documents:
    """An owner's documents: search, list, get, delete. `provider(name)` gives the provider
    called `name` (ProviderError when it is not configured)."""

    def __init__(self, index: DocumentIndex, provider: Callable[[str], Provider],
                 close: Callable[[], Awaitable[None]] | None = None) -> None:
        self.index = index
        self._provider = provider
        self._close = close

    async def aclose(self) -> None:
        """Close the providers this object built (not the records)."""
        if self._close is not None:
            await self._close()

    async def search(self, owner: JobOwner, query: str, *, limit: int = 5,
                     provider: str | None = None, model: str | None = None) -> SearchResult:
        chosen = self._provider(provider or DEFAULT_PROVIDER)
        embedded = await chosen.embed([query], model=model or _default_model(chosen))
        matches = await self.index.search(owner, embedded.vectors[0],
                                          embedding_model=embedded.model,
                                          limit=max(1, min(limit, MAX_RESULTS)))
        return SearchResult(query, chosen.name, embedded.model, matches)

    async def get(self, owner: JobOwner, document_id: str) -> DocumentView | None:
        return await self.index.get(owner, document_id)

    async def list_documents(self, owner: JobOwner, *, limit: int = 50,
                   offset: int = 0) -> tuple[list[DocumentView], int]:
        return await self.index.list_documents(owner, limit=limit, offset=offset)

    async def delete(self, owner: JobOwner, document_id: str) -> bool:
        return await self.index.delete(owner, document_id)


def _default_model(provider: Provider) -> str | None:
    """The builtin provider's one embedding model; others use their configured default."""
    return DEFAULT_MODEL if provider.name == "builtin" else None
