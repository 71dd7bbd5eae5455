"""The best chunks for a query vector: cosine similarity over stored float32 vectors, batch by
batch with numpy, keeping only the best `limit` so memory stays bounded by the batch size.

This is the index's search where no vector extension can be loaded: pgvector is not packaged
for this Debian, and this Python's sqlite3 is built without loadable extensions, so sqlite-vec
cannot be used (see README "Documents"). numpy is imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def to_bytes(vector: Sequence[float]) -> bytes:
    """A vector as stored: little-endian float32, normalised to unit length."""
    import numpy as np

    array = np.asarray(vector, dtype="<f4")
    norm = float(np.linalg.norm(array))
    return (array / norm if norm else array).astype("<f4").tobytes()


class TopMatches:
    """Feed batches of (item, stored vector bytes); `best()` gives (item, score), best first."""

    def __init__(self, query: Sequence[float], limit: int) -> None:
        import numpy as np

        self._np = np
        q = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        self._query = q / norm if norm else q
        self._limit = limit
        self._items: list[Any] = []
        self._scores = np.zeros(0, dtype=np.float32)

    def add(self, batch: Iterable[tuple[T, bytes]]) -> None:
        np = self._np
        rows = [(item, blob) for item, blob in batch if len(blob) == 4 * self._query.size]
        if not rows:
            return
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4")
        scores = matrix.reshape(len(rows), self._query.size) @ self._query
        items = self._items + [item for item, _ in rows]
        scores = np.concatenate([self._scores, scores.astype(np.float32)])
        if len(items) > self._limit:
            keep = np.argpartition(-scores, self._limit - 1)[: self._limit]
            items = [items[i] for i in keep]
            scores = scores[keep]
        self._items, self._scores = items, scores

    def best(self) -> list[tuple[Any, float]]:
        order = self._np.argsort(-self._scores, kind="stable")
        return [(self._items[i], float(self._scores[i])) for i in order]
