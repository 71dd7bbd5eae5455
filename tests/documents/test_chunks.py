"""Chunks: every word of the document in some chunk, in order, none over the size, each citing
its page, with the overlap repeated."""

from __future__ import annotations

import pytest

from agentqueue.documents.chunks import chunk_pages


def words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + n))


def test_a_short_page_is_one_chunk() -> None:
    (chunk,) = chunk_pages(["just a few words"])
    assert (chunk.ordinal, chunk.page, chunk.text) == (0, 1, "just a few words")


def test_long_text_is_covered_in_order_with_overlap() -> None:
    chunks = chunk_pages([words(1000)], words=100, overlap=20)
    assert all(len(c.text.split()) <= 100 for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    seen: list[str] = []
    for previous, chunk in zip([None, *chunks], chunks, strict=False):
        tokens = chunk.text.split()
        if previous is not None:
            assert tokens[:20] == previous.text.split()[-20:]  # the overlap
            tokens = tokens[20:]
        seen.extend(tokens)
    assert seen == words(1000).split()


def test_chunks_end_at_paragraph_breaks_when_they_can() -> None:
    text = words(70) + "\n\n" + words(70, start=70)
    first, second = chunk_pages([text], words=100, overlap=0)
    assert first.text == words(70)
    assert second.text == words(70, start=70)


def test_chunks_never_span_pages() -> None:
    chunks = chunk_pages([words(30), "", words(30, start=30)], words=50, overlap=5)
    assert [(c.page, c.text) for c in chunks] == [(1, words(30)), (3, words(30, start=30))]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_pages(["x"], words=10, overlap=10)
