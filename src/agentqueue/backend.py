"""The connections the public API uses: one set per event loop, and a private loop for the
sync calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.core.budgets import Budgets
from agentqueue.core.limits import LimitStore
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.connection import connect
from agentqueue.engine.deltas import deltas_key
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.stream import StreamReader
from agentqueue.metrics.aggregate import MetricsRecorder
from agentqueue.records.store import Records

if TYPE_CHECKING:
    from agentqueue.core.documents import Documents

T = TypeVar("T")


class Backend:
    """The connections of one event loop: Redis, the queues, the records, the submitter."""

    def __init__(self, settings: Settings, client: redis.Redis, records: Records) -> None:
        self.settings = settings
        self.client = client
        self.records = records
        self.queues: dict[str, JobQueue] = {}
        self.streams: dict[str, StreamReader] = {}
        self.limits = LimitStore(client, settings)
        self.budgets = Budgets(client, self.limits)
        self.submitter = JobSubmitter(self.queues, records, lease_s=settings.submit_lease_s,
                                      budgets=self.budgets)
        self.metrics = MetricsRecorder(client, prefix=settings.queue_prefix)
        self.submitter.on_queued = self.metrics.queued
        self._documents: Documents | None = None

    def documents(self) -> Documents:
        """The document search index's service (made on first use)."""
        if self._documents is None:
            from agentqueue.services import open_documents

            self._documents = open_documents(self.settings, self.records)
        return self._documents

    @classmethod
    async def open(cls, settings: Settings) -> Backend:
        from agentqueue.services import open_records

        url = settings.external_redis_url
        if url is None:
            raise RuntimeError("set REDIS_URL (or REDIS_HOST) to the Redis the workers use")
        records = await open_records(settings)
        return cls(settings, connect(url), records)

    def queue(self, name: str) -> JobQueue:
        from agentqueue.core.queue_profiles import queue_defaults
        from agentqueue.services import replica_wait

        if name not in self.queues:
            self.queues[name] = JobQueue(name, self.client, prefix=self.settings.queue_prefix,
                                         defaults=queue_defaults(self.settings, name),
                                         replica_wait=replica_wait(self.settings))
        return self.queues[name]

    def events(self, queue: str) -> StreamReader:
        """The shared reader of `queue`'s BullMQ events stream (one blocking XREAD for all)."""
        key = f"{self.settings.queue_prefix}:{queue}:events"
        if key not in self.streams:
            self.streams[key] = StreamReader(self.client, key)
        return self.streams[key]

    def deltas(self, queue: str) -> StreamReader:
        """The shared reader of `queue`'s deltas stream (`engine.deltas`)."""
        key = deltas_key(self.settings.queue_prefix, queue)
        if key not in self.streams:
            self.streams[key] = StreamReader(self.client, key)
        return self.streams[key]

    async def close(self) -> None:
        for stream in self.streams.values():
            await stream.close()
        for queue in self.queues.values():
            await queue.close()
        await self.metrics.close()
        if self._documents is not None:
            await self._documents.aclose()
        await self.client.aclose()
        await self.records.close()


class SyncPortal:
    """A private event loop in a daemon thread, running the sync calls' coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agentqueue-sync",
                                       daemon=True)
        self.thread.start()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            call.close()
            raise RuntimeError("a sync agentqueue call inside a running event loop would block "
                               "it: await the async form instead")
        return asyncio.run_coroutine_threadsafe(call, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
