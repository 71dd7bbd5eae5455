"""Document index figures: how fast the offline model embeds chunks, and how long a search over
an organization's index takes as it grows (exact cosine with numpy over vectors read from SQL).
Prints figures; asserts nothing.

    python bench/documents.py [--chunks 200] [--index 1000,10000,50000] [--url sqlite|postgresql://…]

The index sizes are filled with random unit vectors (the search cost does not depend on what they
mean); the embedding rate uses real chunks of generated prose through all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from agentqueue.ai.embeddings import DIMENSIONS, embed_texts
from agentqueue.documents.chunks import chunk_pages
from agentqueue.records import JobOwner, Records, upgrade
from agentqueue.records.documents import DocumentIndex, NewChunk

WORDS = ["order", "refund", "parcel", "courier", "invoice", "warranty", "battery", "screen",
         "return", "policy", "customer", "days", "receipt", "shipping", "delivery", "account",
         "payment", "card", "support", "hours", "weekend", "office"]


def prose(words: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def unit_vectors(n: int, rng: random.Random) -> list[list[float]]:
    import numpy as np

    matrix = np.random.default_rng(rng.randrange(2**32)).standard_normal((n, DIMENSIONS))
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix.astype(np.float32).tolist()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--index", default="1000,10000,50000")
    parser.add_argument("--url", default="sqlite")
    args = parser.parse_args()
    rng = random.Random(7)

    chunks = chunk_pages([prose(160 * args.chunks, rng)])
    await embed_texts(["warm up"])
    started = time.perf_counter()
    await embed_texts([c.text for c in chunks])
    elapsed = time.perf_counter() - started
    print(f"embedding: {len(chunks)} chunks of 160 words in {elapsed:.2f} s "
          f"= {len(chunks) / elapsed:.1f} chunks/s (all-MiniLM-L6-v2, numpy, one process)")

    with tempfile.TemporaryDirectory() as tmp:
        url = (f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}" if args.url == "sqlite"
               else args.url)
        await upgrade(url)
        records = await Records.connect(url)
        index = DocumentIndex(records)
        owner = JobOwner(user_id="bench", org_id=f"bench-{rng.randrange(10**9)}")
        stored = 0
        try:
            for size in (int(s) for s in args.index.split(",")):
                while stored < size:
                    batch = min(5000, size - stored)
                    vectors = unit_vectors(batch, rng)
                    await index.replace(
                        owner, f"doc-{stored}", title=None, content_type="text/plain",
                        pages=1, characters=0, provider="builtin", embedding_model="bench",
                        chunks=[NewChunk(i, 1, "x", v) for i, v in enumerate(vectors)])
                    stored += batch
                query = unit_vectors(1, rng)[0]
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    await index.search(owner, query, embedding_model="bench", limit=5)
                    times.append(time.perf_counter() - started)
                print(f"search: {size:>7} chunks in the organization's index: best "
                      f"{min(times) * 1000:.1f} ms, median {sorted(times)[2] * 1000:.1f} ms "
                      f"({records.dialect})")
        finally:
            for n in range(0, stored, 5000):
                await index.delete(owner, f"doc-{n}")
            await records.close()


if __name__ == "__main__":
    asyncio.run(main())
