"""One blocking reader per Redis stream, shared by everyone following it on an event loop.

A job handle's `wait` or `events` follows its queue's BullMQ events stream. Each doing its own
blocking XREAD would hold a pooled connection per follower: a few dozen waits would take the
whole pool and stall every other call. Instead one task per stream reads and hands each entry to
every subscription; a subscription that starts behind the reader first reads what it missed with
XRANGE, so no follower loses an entry written after the point it chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias, cast

import redis.asyncio as redis

# An entry of a Redis stream, as a decoding client reads it: (id, fields).
StreamEntry = tuple[str, dict[str, str]]
# How long one blocking read lasts before it is sent again (and an idle reader stops).
_BLOCK_MS = 5_000
_BATCH = 500
# Where several subscriptions put their entries, each tagged with its stream's key, in the
# order they arrive (a follower of several streams reads one queue).
Sink: TypeAlias = "asyncio.Queue[tuple[str, str, dict[str, str]] | BaseException]"


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """The entries of one stream after a chosen id, in order, each once (`next`)."""

    def __init__(self, reader: StreamReader, after: str, *, catching_up: bool,
                 sink: Sink | None = None) -> None:
        self.reader = reader
        self.after = after
        self.queue: asyncio.Queue[StreamEntry | BaseException] = asyncio.Queue()
        self.sink = sink  # given: entries go there (tagged), not to `queue`
        # While it reads what went out before it joined, what the reader hands it waits here.
        self.held: list[StreamEntry] | None = [] if catching_up else None

    def deliver(self, entry_id: str, fields: dict[str, str]) -> None:
        if self.held is not None:
            self.held.append((entry_id, fields))
        else:
            self._put(entry_id, fields)

    def _put(self, entry_id: str, fields: dict[str, str]) -> None:
        if id_key(entry_id) > id_key(self.after):  # never twice, never out of order
            self.after = entry_id
            if self.sink is not None:
                self.sink.put_nowait((self.reader.key, entry_id, fields))
            else:
                self.queue.put_nowait((entry_id, fields))

    def fail(self, error: BaseException) -> None:
        (self.sink if self.sink is not None else self.queue).put_nowait(error)

    async def next(self, timeout: float | None) -> StreamEntry:
        """The next entry; `TimeoutError` after `timeout` seconds without one."""
        async with asyncio.timeout(timeout):
            item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item


class StreamReader:
    """The one blocking XREAD of stream `key` on this event loop, while anyone follows it."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.subscriptions: set[Subscription] = set()
        self.position: str | None = None  # the last id handed out (None: no reader running)
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self, after: str, *, sink: Sink | None = None
                        ) -> AsyncIterator[Subscription]:
        """Entries after `after` (an id of the stream, or "0-0"), until the block ends; into
        `sink` (tagged with this stream's key) if given."""
        if self._task is None or self._task.done():
            self.position = after
            self._task = asyncio.get_running_loop().create_task(self._run())
        behind = self.position  # entries up to here went out before this subscription joined
        assert behind is not None
        subscription = Subscription(self, after, catching_up=id_key(after) < id_key(behind),
                                    sink=sink)
        self.subscriptions.add(subscription)
        try:
            if subscription.held is not None:
                await self._catch_up(subscription, behind)
            yield subscription
        finally:
            self.subscriptions.discard(subscription)

    async def read_after(self, start: str, upto: str = "+") -> list[StreamEntry]:
        """The stream's entries after `start`, up to `upto` (default: all there are now)."""
        out: list[StreamEntry] = []
        while True:
            entries = cast(list[StreamEntry], await self.client.xrange(
                self.key, min=f"({start}", max=upto, count=_BATCH))
            out.extend(entries)
            if len(entries) < _BATCH:
                return out
            start = entries[-1][0]

    async def _catch_up(self, subscription: Subscription, upto: str) -> None:
        for entry_id, fields in await self.read_after(subscription.after, upto):
            subscription._put(entry_id, fields)
        held, subscription.held = subscription.held or [], None
        for entry_id, fields in held:
            subscription._put(entry_id, fields)

    async def _run(self) -> None:
        try:
            while self.subscriptions:
                assert self.position is not None
                read = await self.client.xread({self.key: self.position}, block=_BLOCK_MS,
                                               count=_BATCH)
                for _, entries in cast(list[tuple[str, list[StreamEntry]]], read or []):
                    for entry_id, fields in entries:
                        self.position = entry_id
                        for subscription in list(self.subscriptions):
                            subscription.deliver(entry_id, fields)
        except Exception as exc:
            for subscription in list(self.subscriptions):
                subscription.fail(exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def event_json(raw: str | None) -> Any:
    """An events-stream field that holds JSON (returnvalue, data), decoded; plain text as it is
    (a producer may write either)."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
