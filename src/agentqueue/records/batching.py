"""Group commit: writes that many callers make at the same time share one transaction.

A `Batcher` hands the items callers submit while a flush is under way to the next flush, all
together (up to `max_items`), and each caller awaits its own item's result: nobody returns
before the transaction holding their write has committed, and a transaction that fails fails
every caller in it with the same error (the API answers each 503). There is no timer: a lone
caller is flushed at once, and under load the batch grows by itself to what arrived during the
previous commit. One flush at a time (the default) also means one writer per process, where
concurrent SQLite write transactions would queue on the database lock in SQLite's sleeping busy
handler. A server database takes `max_flushes` > 1: a batch need not wait for the previous
one's commit to start its own (commits, not CPU, bound a busy PostgreSQL's batches).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

log = logging.getLogger("agentqueue.records")

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Flushes concurrently submitted items together; `flush(items)` returns one result each."""

    def __init__(
        self, flush: Callable[[list[Item]], Awaitable[Sequence[Result]]], *,
        max_items: int = 500, name: str = "batch", max_flushes: int = 1,
    ) -> None:
        self._flush = flush
        self.max_items = max_items
        self.max_flushes = max_flushes
        self.name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runners: set[asyncio.Task[None]] = set()
        self.flushes = 0  # how many flushes ran, and how many items they held (figures)
        self.flushed_items = 0

    async def submit(self, item: Item) -> Result:
        """`item`'s result once the flush that holds it is done (its error if that failed)."""
        # A caller that gives up does not take its item out of a transaction under way.
        return await asyncio.shield(self.post(item))

    def post(self, item: Item) -> asyncio.Future[Result]:
        """Queue `item` for a flush without waiting for it: its result, when there is one."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._waiting.append((item, future))
        if len(self._runners) < self.max_flushes:
            self._runners.add(asyncio.create_task(self._run(), name=f"{self.name}-flush"))
        return future

    async def drain(self) -> None:
        """Wait until everything submitted so far is flushed (at shutdown)."""
        while self._runners:
            await asyncio.shield(next(iter(self._runners)))

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:self.max_items]
                del self._waiting[:self.max_items]
                await self._flush_one(batch)
        finally:
            # At once, not in a done callback: an item posted in between would find this
            # runner still counted and wait for a flush that never comes.
            current = asyncio.current_task()
            if current is not None:
                self._runners.discard(current)

    async def _flush_one(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.flushes += 1
        self.flushed_items += len(batch)
        try:
            results = await self._flush([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark the error seen: a caller that gave up (cancelled) never reads it."""
    if not future.cancelled():
        future.exception()
