"""The document index on both backends (SQLite and PostgreSQL, see test_records): a scope sees
only its own documents, processing again replaces the chunks, search ranks by cosine."""

from __future__ import annotations

import asyncio
import math

import pytest

from agentqueue.records import JobOwner, Records, documents
from agentqueue.records.documents import DocumentIndex, NewChunk, scope_of
from tests.records.test_records import Clock

ALICE = JobOwner(user_id="alice", org_id="acme")
BOB = JobOwner(user_id="bob", org_id="acme")  # same organization as alice
EVE = JobOwner(user_id="eve", org_id="other")
CAROL = JobOwner(user_id="carol")  # no organization
MODEL = "test-model"


def unit(angle: float) -> list[float]:
    """A 2-d unit vector at `angle` radians: cosine to (1, 0) is cos(angle)."""
    return [math.cos(angle), math.sin(angle)]


def chunks(*angles: float, prefix: str = "chunk") -> list[NewChunk]:
    return [NewChunk(i, 1 + i // 2, f"{prefix} {i}", unit(a)) for i, a in enumerate(angles)]


async def store(index: DocumentIndex, owner: JobOwner, name: str, parts: list[NewChunk],
                model: str = MODEL) -> bool:
    stored = await index.replace(owner, name, title=name.title(), content_type="text/plain",
                                 pages=2, characters=100, provider="builtin",
                                 embedding_model=model, chunks=parts, meta={"k": 1},
                                 job_ref="jobs:1")
    return stored.replaced


async def test_search_ranks_an_organizations_chunks_by_cosine(records: Records) -> None:
    index = DocumentIndex(records)
    await store(index, ALICE, "a", chunks(0.9, 0.1, 2.0))
    await store(index, BOB, "b", chunks(0.5))
    matches = await index.search(BOB, [1.0, 0.0], embedding_model=MODEL, limit=3)
    assert [(m.document_id, m.ordinal) for m in matches] == [("a", 1), ("b", 0), ("a", 0)]
    assert matches[0].score == round(math.cos(0.1), 6)
    assert (matches[0].title, matches[0].page, matches[0].text) == ("A", 1, "chunk 1")


async def test_other_scopes_see_nothing(records: Records) -> None:
    index = DocumentIndex(records)
    await store(index, ALICE, "a", chunks(0.0))
    await store(index, CAROL, "c", chunks(0.0))
    for outsider in (EVE, JobOwner(user_id="alice")):  # alice without her organization too
        assert await index.search(outsider, [1.0, 0.0], embedding_model=MODEL) == []
        assert await index.get(outsider, "a") is None
        assert not await index.delete(outsider, "a")
    assert [m.document_id for m in await index.search(
        CAROL, [1.0, 0.0], embedding_model=MODEL)] == ["c"]
    assert await index.get(BOB, "c") is None
    assert await index.get(ALICE, "a") is not None  # outsiders' deletes did nothing
    assert scope_of(ALICE) == "org:acme" and scope_of(CAROL) == "user:carol"


async def test_processing_again_replaces_the_chunks(records: Records) -> None:
    index = DocumentIndex(records)
    assert not await store(index, ALICE, "a", chunks(0.0, 0.1, 0.2, prefix="old"))
    first = await index.get(ALICE, "a")
    assert await store(index, BOB, "a", chunks(3.0, prefix="new"))
    doc = await index.get(ALICE, "a")
    assert doc is not None and first is not None
    assert (doc.chunk_count, doc.user_id, doc.created_at) == (1, "bob", first.created_at)
    matches = await index.search(ALICE, [1.0, 0.0], embedding_model=MODEL, limit=10)
    assert [m.text for m in matches] == ["new 0"]


async def test_only_chunks_of_the_querys_model_are_compared(records: Records) -> None:
    index = DocumentIndex(records)
    await store(index, ALICE, "small", chunks(0.0))
    await store(index, ALICE, "big", [NewChunk(0, 1, "x", [1.0, 0.0, 0.0])], model="other")
    assert [m.document_id for m in await index.search(
        ALICE, [1.0, 0.0, 0.0], embedding_model="other")] == ["big"]


async def test_list_get_and_delete(records: Records, clock: Clock) -> None:
    index = DocumentIndex(records)
    for name in ("one", "two", "three"):
        await store(index, ALICE, name, chunks(0.0, 1.0))
        clock.advance(seconds=1)
    await store(index, EVE, "theirs", chunks(0.0))
    views, total = await index.list_documents(BOB, limit=2)
    assert total == 3 and [v.document_id for v in views] == ["three", "two"]
    views, _ = await index.list_documents(BOB, limit=2, offset=2)
    assert [v.document_id for v in views] == ["one"]
    got = await index.get(ALICE, "two")
    assert got is not None
    assert (got.title, got.pages, got.chunk_count, got.dimensions, got.meta, got.job_ref) == (
        "Two", 2, 2, 2, {"k": 1}, "jobs:1")
    assert await index.delete(BOB, "two")
    assert await index.get(ALICE, "two") is None
    assert not await index.delete(BOB, "two")
    matches = await index.search(ALICE, [1.0, 0.0], embedding_model=MODEL, limit=50)
    assert {m.document_id for m in matches} == {"one", "three"}  # its chunks went with it


async def test_search_reads_past_one_batch(records: Records,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "SEARCH_BATCH", 3)
    index = DocumentIndex(records)
    await store(index, ALICE, "a", chunks(*[0.1 * i for i in range(10, 0, -1)]))
    matches = await index.search(ALICE, [1.0, 0.0], embedding_model=MODEL, limit=2)
    assert [m.ordinal for m in matches] == [9, 8]


async def test_two_jobs_storing_one_new_document_at_once_both_succeed(records: Records) -> None:
    index = DocumentIndex(records)
    replaced = await asyncio.gather(store(index, ALICE, "same", chunks(0.0, prefix="one")),
                                    store(index, BOB, "same", chunks(0.0, 0.1, prefix="two")))
    assert sorted(replaced) == [False, True]  # one created it, the other replaced it
    doc = await index.get(ALICE, "same")
    assert doc is not None
    matches = await index.search(ALICE, [1.0, 0.0], embedding_model=MODEL, limit=10)
    # Whichever came last, its chunks alone are there.
    assert len(matches) == doc.chunk_count
    assert {m.text.split()[0] for m in matches} == {"one" if doc.chunk_count == 1 else "two"}
