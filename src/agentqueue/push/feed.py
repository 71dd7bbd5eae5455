"""One process's push hub and its subscribers' feeds.

The hub keeps one blocking reader per stream (`engine.stream.StreamReader`) for all its
feeds, and shapes each event's job once for all of them (`Snapshots`, given by the API, says
what the job looks like and who owns it): a thousand subscribers cost one read of Redis and one
look at the job per event, not a thousand.

A feed follows one job (`job=`) or every job its viewer may see. Its events:
- `created` (BullMQ's `added`), `update` (a change of state or progress; a progress write that
  changes nothing shown, such as coalesced streamed text, is not repeated), `delta` (a piece of
  streamed text, from the deltas stream), and `completed` / `failed` (which ends a job's feed);
- in order per job: a job's deltas all come before its outcome (the worker writes them first;
  the feed reads the deltas stream up to now before it tells an outcome);
- each with the feed's position after it (`Cursor`), from which a new feed resumes with no
  event lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import redis.asyncio as redis

from agentqueue.core.lookup import Viewer
from agentqueue.engine.deltas import Delta, deltas_key, events_key
from agentqueue.engine.stream import Sink, StreamEntry, StreamReader, id_key
from agentqueue.push.cursor import DELTAS, EVENTS, Cursor

Kind = Literal["created", "update", "delta", "completed", "failed"]
Final = Literal["completed", "failed"]
FINAL: frozenset[str] = frozenset({"completed", "failed"})

# BullMQ events that change what a job shows; others (drained, paused, duplicated…) are not
# about one job's state.
_UPDATES = frozenset({"waiting", "active", "progress", "delayed", "stalled", "removed",
                      "waiting-children"})
_CACHED = 4096  # events shaped, and owners known, kept for the feeds that follow behind
# Pauses between looks at a job that failed (None: give up; the subscriber's stream ends, and
# it resumes from its last event id).
_RETRY_PAUSES: tuple[float | None, ...] = (0.1, 0.5, 2.0, None)
log = logging.getLogger("agentqueue.push")


@dataclass(frozen=True)
class Snapshot:
    """A job as the API shows it, with its owner (who may see it) and whether it has ended."""

    owner_user: str  # "" for a job without an owner (admins only)
    owner_org: str | None
    final: Final | None
    body: Any

    @functools.cached_property
    def encoded(self) -> str:
        """`body` as JSON, encoded once however many subscribers are sent it."""
        return json.dumps(self.body, separators=(",", ":"))


class Snapshots(Protocol):
    async def snapshot(self, queue: str, job_id: str,
                       event: dict[str, str] | None = None) -> Snapshot | None:
        """The job now (None: no such job); `event`, the events-stream entry that prompted the
        look, may be ahead of what the stores say (the records follow Redis)."""


@dataclass(frozen=True)
class PushEvent:
    id: str  # the feed's position after this event (SSE `id:`, `Last-Event-ID`)
    kind: Kind
    queue: str
    job_id: str
    job: Any = None  # created, update, completed, failed: the job as the API shows it
    delta: Delta | None = None
    snapshot: Snapshot | None = None  # where `job` came from (its JSON, encoded once)

    @property
    def final(self) -> bool:
        return self.kind in FINAL


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class PushHub:
    """The streams of every queue, read once per process, for every feed (see the module)."""

    def __init__(self, client: redis.Redis, prefix: str, queues: Iterable[str],
                 snapshots: Snapshots) -> None:
        self.client = client  # blocking reads: a client without a socket timeout
        self.prefix = prefix
        self.queues = sorted(queues)
        self.snapshots = snapshots
        self._readers: dict[tuple[str, str], StreamReader] = {}
        self._shaped: _Lru = _Lru(_CACHED)  # (queue, entry id) -> task of (Snapshot, changed)
        self._shown: _Lru = _Lru(_CACHED)  # (queue, job id) -> the body last shaped
        self._owners: _Lru = _Lru(_CACHED * 4)  # (queue, job id) -> (user, org)

    def reader(self, queue: str, kind: str) -> StreamReader:
        if (queue, kind) not in self._readers:
            key = events_key(self.prefix, queue) if kind == EVENTS else deltas_key(
                self.prefix, queue)
            self._readers[(queue, kind)] = StreamReader(self.client, key)
        return self._readers[(queue, kind)]

    def feed(self, viewer: Viewer, *, job: tuple[str, str] | None = None,
             after: Cursor | None = None, only_user: str | None = None) -> Feed:
        """A feed of one job (`job=(queue, id)`) or of all the viewer may see (narrowed to
        `only_user`'s jobs if given), from now or from `after`."""
        queues = [job[0]] if job is not None else self.queues
        return Feed(self, viewer, queues, job=job, after=after, only_user=only_user)

    async def now(self, queues: Iterable[str]) -> Cursor:
        """Every stream's last entry: a feed starting here hears only what comes next."""
        pairs = [(queue, kind) for queue in queues for kind in (EVENTS, DELTAS)]
        lasts = await asyncio.gather(*(
            self.client.xrevrange(self.reader(q, k).key, count=1) for q, k in pairs))
        return Cursor({pair: last[0][0] if last else "0-0"
                       for pair, last in zip(pairs, lasts, strict=True)})

    async def shaped(self, queue: str, entry_id: str, job_id: str,
                     fields: dict[str, str]) -> tuple[Snapshot | None, bool]:
        """The job as it looks after events-stream entry `entry_id`, looked at once for all
        feeds; and whether it shows anything new since the entry before."""
        key = (queue, entry_id)
        task = self._shaped.get(key)
        if task is None:
            task = asyncio.ensure_future(self._shape(queue, job_id, fields))
            self._shaped.put(key, task)
        try:
            result: tuple[Snapshot | None, bool] = await asyncio.shield(task)
        except Exception:
            if self._shaped.get(key) is task:
                del self._shaped[key]  # a failed look is not kept: the next asks again
            raise
        return result

    async def _shape(self, queue: str, job_id: str,
                     fields: dict[str, str]) -> tuple[Snapshot | None, bool]:
        snapshot = await self.snapshots.snapshot(queue, job_id, fields)
        if snapshot is None:
            return None, False
        self._owners.put((queue, job_id), (snapshot.owner_user, snapshot.owner_org))
        before = self._shown.get((queue, job_id))
        self._shown.put((queue, job_id), snapshot.body)
        return snapshot, snapshot.body != before

    async def owner(self, queue: str, job_id: str) -> tuple[str, str | None] | None:
        """Who owns the job (it never changes); None while no such job is known."""
        owner: tuple[str, str | None] | None = self._owners.get((queue, job_id))
        if owner is None:
            snapshot = await self.snapshots.snapshot(queue, job_id)
            if snapshot is None:
                return None
            owner = (snapshot.owner_user, snapshot.owner_org)
            self._owners.put((queue, job_id), owner)
        return owner

    async def close(self) -> None:
        for reader in self._readers.values():
            await reader.close()
        for task in self._shaped.values():
            task.cancel()
        await self.client.aclose()


class Feed:
    """One subscriber's events (see the module): `async with feed:`, then `await feed.next()`
    until it gives None (a job's feed ends after the job's outcome)."""

    def __init__(self, hub: PushHub, viewer: Viewer, queues: list[str], *,
                 job: tuple[str, str] | None, after: Cursor | None,
                 only_user: str | None) -> None:
        self.hub = hub
        self.viewer = viewer
        self.queues = queues
        self.job = job
        self.resumed = after is not None
        self.position = Cursor(after or {})
        self.only_user = only_user
        self.ended = False
        self._ready: list[PushEvent] = []
        self._sink: Sink = asyncio.Queue()
        self._stack = contextlib.AsyncExitStack()
        self._key_of: dict[str, tuple[str, str]] = {}

    async def __aenter__(self) -> Feed:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _open(self) -> None:
        now = await self.hub.now(self.queues)
        for pair, last in now.items():
            # A stream the resumed position does not name (a queue added since): from now.
            self.position.setdefault(pair, last)
            reader = self.hub.reader(*pair)
            self._key_of[reader.key] = pair
            await self._stack.enter_async_context(
                reader.subscribe(self.position[pair], sink=self._sink))
        if self.job is None:
            return
        queue, job_id = self.job
        snapshot = await self.hub.snapshots.snapshot(queue, job_id)
        if snapshot is None or not self._may_see(snapshot.owner_user, snapshot.owner_org):
            self.ended = True
            return
        if not self.resumed:
            # Where it stands now, then what happens next.
            self._ready.append(PushEvent(self.position.encode(), snapshot.final or "update",
                                         queue, job_id, job=snapshot.body, snapshot=snapshot))
            self.ended = snapshot.final is not None
        elif snapshot.final is not None:
            # Resumed after it ended: all it will ever write is in Redis already. Tell what
            # followed the position (if the outcome was told already, nothing: the feed ends).
            entries = [(pair, entry) for pair in now
                       for entry in await self.hub.reader(*pair).read_after(self.position[pair])]
            entries.sort(key=lambda item: id_key(item[1][0]))
            for pair, (entry_id, fields) in entries:
                self._ready.extend(await self._handle(pair, entry_id, fields))
            if not any(event.final for event in self._ready):
                self.ended = True

    @property
    def pending(self) -> int:
        """Events ready to be told without waiting."""
        return len(self._ready)

    def _may_see(self, user: str, org: str | None) -> bool:
        if self.only_user is not None and user != self.only_user:
            return False
        return self.viewer.can_see(user, org)

    async def next(self) -> PushEvent | None:
        """The next event (waiting for it); None once the feed has ended."""
        while not self._ready:
            if self.ended:
                return None
            item = await self._sink.get()
            if isinstance(item, BaseException):
                raise item
            key, entry_id, fields = item
            self._ready.extend(await self._handle(self._key_of[key], entry_id, fields))
        event = self._ready.pop(0)
        if self.job is not None and event.final:
            self.ended, self._ready = True, []
        return event

    async def __aiter__(self) -> AsyncIterator[PushEvent]:
        while (event := await self.next()) is not None:
            yield event

    async def _handle(self, pair: tuple[str, str], entry_id: str,
                      fields: dict[str, str]) -> list[PushEvent]:
        """What one stream entry tells this feed (often nothing)."""
        if id_key(entry_id) <= id_key(self.position[pair]):
            return []  # already handled (read again by a catch-up)
        queue, kind = pair
        job_id = fields.get("jobId")
        if job_id is None or (self.job is not None and self.job != (queue, job_id)):
            self.position[pair] = entry_id
            return []
        if kind == EVENTS:
            events = await self._handle_event(queue, job_id, entry_id, fields)
            self.position[pair] = entry_id
            return events
        self.position[pair] = entry_id
        if kind == DELTAS:
            delta = Delta.from_fields(fields)
            owner = await self.hub.owner(queue, job_id)
            if delta is None or owner is None or not self._may_see(*owner):
                return []
            return [PushEvent(self.position.encode(), "delta", queue, job_id, delta=delta)]
        return []

    async def _handle_event(self, queue: str, job_id: str, entry_id: str,
                            fields: dict[str, str]) -> list[PushEvent]:
        """An events-stream entry about a job the feed follows (its position not yet moved:
        the events it gives carry positions up to and including it)."""
        name = fields.get("event", "")
        if name not in _UPDATES and name not in FINAL and name != "added":
            return []
        for pause in _RETRY_PAUSES:
            try:
                snapshot, changed = await self.hub.shaped(queue, entry_id, job_id, fields)
                break
            except Exception as exc:  # Redis or the records busy: a moment, then again
                if pause is None:
                    raise
                log.warning("push: looking at job %s of %s failed (%s); trying again", job_id,
                            queue, type(exc).__name__)
                await asyncio.sleep(pause)
        if snapshot is None or not self._may_see(snapshot.owner_user, snapshot.owner_org):
            return []
        event_kind: Kind
        if name in FINAL:
            event_kind = snapshot.final or ("completed" if name == "completed" else "failed")
        elif name == "removed" and snapshot.final is not None and changed:
            event_kind = snapshot.final  # cancelled before it ran
        elif name == "added":
            event_kind = "created"
        elif changed:
            # Even if it shows an outcome already (it was looked at late): the outcome's own
            # entry follows, and tells it once.
            event_kind = "update"
        else:
            return []
        out: list[PushEvent] = []
        if event_kind in FINAL:
            # Its deltas were written before its outcome: tell those not read yet first.
            deltas = (queue, DELTAS)
            for delta_id, delta_fields in await self._unread(deltas):
                out.extend(await self._handle(deltas, delta_id, delta_fields))
        position = Cursor(self.position)
        position[(queue, EVENTS)] = entry_id
        out.append(PushEvent(position.encode(), event_kind, queue, job_id, job=snapshot.body,
                             snapshot=snapshot))
        return out

    async def _unread(self, pair: tuple[str, str]) -> list[StreamEntry]:
        return await self.hub.reader(*pair).read_after(self.position[pair])
