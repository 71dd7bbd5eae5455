"""A document's text cut into overlapping chunks of words, each small enough to embed whole.

all-MiniLM-L6-v2 reads at most 256 tokens; English runs at about 1.3 WordPiece tokens a word,
so the default of 160 words fits with room to spare. Chunks break at paragraph ends where they
can, and the next chunk repeats the last `overlap` words so a sentence cut at the edge is found
from either side. (No PyPI splitter was worth a dependency for this: the well-known ones come
with LangChain or count tokens with a tokenizer other than the model's.)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_WORDS = 160
DEFAULT_OVERLAP = 32


@dataclass(frozen=True)
class Chunk:
    ordinal: int  # 0, 1, … over the whole document
    page: int  # 1-based page it starts on
    text: str


def chunk_pages(pages: list[str], *, words: int = DEFAULT_WORDS,
                overlap: int = DEFAULT_OVERLAP) -> list[Chunk]:
    """Chunks of at most `words` words over `pages`, in reading order; a chunk never spans
    two pages (so each cites one page)."""
    if words < 1 or not 0 <= overlap < words:
        raise ValueError("words must be positive and overlap in [0, words)")
    chunks: list[Chunk] = []
    for number, page in enumerate(pages, start=1):
        for text in _page_chunks(page, words, overlap):
            chunks.append(Chunk(len(chunks), number, text))
    return chunks


def _page_chunks(page: str, size: int, overlap: int) -> list[str]:
    # Words, each marked with whether a paragraph ends after it.
    tokens: list[tuple[str, bool]] = []
    for paragraph in page.split("\n\n"):
        split = paragraph.split()
        tokens.extend((word, i == len(split) - 1) for i, word in enumerate(split))
    out: list[str] = []
    start = 0
    while start < len(tokens):
        end = min(start + size, len(tokens))
        if end < len(tokens):
            # Prefer to end at a paragraph break in the chunk's second half.
            for cut in range(end, start + size // 2, -1):
                if tokens[cut - 1][1]:
                    end = cut
                    break
        out.append(" ".join(word for word, _ in tokens[start:end]))
        if end == len(tokens):
            break
        start = max(end - overlap, start + 1)
    return out
