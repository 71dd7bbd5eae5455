"""A named queue: add, inspect, count, pause, clean, cancel and retry jobs.

A thin layer over the bullmq package's `Queue`, so the rest of agentqueue depends on this small
interface rather than on the port's camelCase API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

import redis.asyncio as redis
from bullmq import FlowProducer, Job, Queue

from agentqueue.engine.bulk import AtomicAdder, BulkEntry, add_command
from agentqueue.engine.coalesce import coalescer_for
from agentqueue.engine.connection import (
    REDIS_FAILURES,
    is_cluster,
    socket_timeout_of,
    transaction,
)
from agentqueue.engine.jobs import (
    FINISHED_STATES,
    PENDING_STATES,
    JobView,
    is_custom_job_id,
    is_job_id,
)
from agentqueue.engine.topology import hash_tag, require_hash_tag

log = logging.getLogger("agentqueue.queue")

# Every state BullMQ keeps a job in ("paused" only on queues paused by old BullMQ versions).
ALL_STATES: tuple[str, ...] = (
    "active", "waiting", "prioritized", "paused", "delayed", "completed", "failed",
)
CANCELLED_REASON = "Cancelled by user"
# An entry of a Redis stream, as a decoding client reads it: (id, fields).
StreamEntry = tuple[str, dict[str, str]]
# BullMQ events (on `<prefix>:<queue>:events`) that end a job's run.
FINISHED_EVENTS = ("completed", "failed")
# Decrement the id counter only if it still holds the value our own add left there.
_GIVE_BACK_ID = """
if tonumber(redis.call("GET", KEYS[1]) or "0") == tonumber(ARGV[1]) then
  return redis.call("DECR", KEYS[1])
end
return false
"""


@dataclass(frozen=True)
class QueueDefaults:
    """Job options applied to every job added through this queue (the seed's defaults)."""

    attempts: int = 3
    backoff_ms: int = 2000
    keep_completed: int = 100  # how many finished jobs Redis keeps…
    keep_failed: int = 100
    keep_completed_s: int | None = None  # …and, if set, for how long (seconds)
    keep_failed_s: int | None = None

    def job_options(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "backoff": {"type": "exponential", "delay": self.backoff_ms},
            "removeOnComplete": _keep(self.keep_completed, self.keep_completed_s),
            "removeOnFail": _keep(self.keep_failed, self.keep_failed_s),
        }


def _keep(count: int, age_s: int | None) -> int | dict[str, int]:
    return {"count": count, "age": age_s} if age_s else count


@dataclass(frozen=True)
class ReplicaWait:
    """Wait until `replicas` replicas have each job added (Redis WAIT), up to `timeout_ms`, so
    that a failover right after the add does not lose it (replication is asynchronous)."""

    replicas: int = 0
    timeout_ms: int = 500


class CancelOutcome(Enum):
    NOT_FOUND = "not_found"
    ALREADY_FINISHED = "already_finished"
    CANCELLED = "cancelled"  # removed before it ran
    REQUESTED = "requested"  # active: its worker was told to stop it


class InvalidJobId(ValueError):
    """Raised when asked to add a job under an id that names a queue key (see `is_job_id`)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"{job_id!r} cannot be a job id")
        self.job_id = job_id


class JobNotRetryable(Exception):
    """Raised when a job is in a state that cannot be retried."""

    def __init__(self, state: str) -> None:
        super().__init__(f"job is {state}; only failed jobs can be retried")
        self.state = state


def cancel_channel(prefix: str, queue: str) -> str:
    """Pub/sub channel on which workers hear cancellation requests for active jobs."""
    return f"agentqueue:{prefix}:{queue}:cancel"


def cancel_requests_key(prefix: str, queue: str) -> str:
    """Set of job ids whose cancellation was requested (read by a worker at pickup too)."""
    return f"agentqueue:{prefix}:{queue}:cancel-requests"


@dataclass(frozen=True)
class QueueMetrics:
    """Finished jobs of one kind: the total ever counted, and per minute, newest first (the
    current minute first)."""

    total: int
    per_minute: list[int]


class JobQueue:
    def __init__(
        self,
        name: str,
        client: redis.Redis,
        *,
        prefix: str = "bull",
        defaults: QueueDefaults | None = None,
        replica_wait: ReplicaWait | None = None,
    ) -> None:
        if is_cluster(client):
            if hash_tag(f"{prefix}:{name}") is None:
                require_hash_tag(prefix)  # raises: BullMQ's scripts need one slot per queue
            if replica_wait is not None and replica_wait.replicas:
                raise ValueError("waiting for replicas is for one primary, not a cluster")
        self.name = name
        self.prefix = prefix
        self.client = client
        self.defaults = defaults or QueueDefaults()
        self.replica_wait = replica_wait or ReplicaWait()
        self._queue = Queue(name, {"connection": client, "prefix": prefix})
        self._flows: FlowProducer | None = None
        self._adder = AtomicAdder(client)
        self._replication_mark = f"agentqueue:{prefix}:{name}:replicated"
        self._id_key = f"{prefix}:{name}:id"
        # A submission's id and add share pipelines with concurrent submissions'.
        self._commands = coalescer_for(client)
        self._coalesced_give_back = self._commands.script(_GIVE_BACK_ID)
        self._tombstones = f"agentqueue:{prefix}:{name}:cancelled"
        self._tombstone_order = f"agentqueue:{prefix}:{name}:cancelled-order"

    @property
    def bullmq(self) -> Queue:
        """The package's `Queue` under this one (job schedulers use it)."""
        return self._queue

    # -- adding -------------------------------------------------------------------------------

    async def add(self, name: str, data: Any, **options: Any) -> str:
        """Add one job; `options` are BullMQ job options (delay, priority, attempts, jobId…).

        The package's own add script, sent in one pipeline with concurrent callers' commands
        (see `agentqueue.engine.coalesce`)."""
        job_id = options.get("jobId")
        if job_id is not None and not is_job_id(str(job_id)):
            raise InvalidJobId(str(job_id))
        job = Job(self._queue, name, data,
                  {**self._queue.jobsOpts, **self.defaults.job_options(), **options})
        call, source = await add_command(self._queue.backend.scripts, job)
        self._commands.script(source)  # known, should Redis have lost it
        added = await self._commands.call("EVALSHA", *call)
        if isinstance(added, int) and added < 0:
            raise self._queue.backend.scripts.finishedErrors({
                "code": added, "parentKey": job.parentKey, "command": "addJob"})
        await self._wait_for_replicas()
        return str(added)

    async def next_id(self) -> str:
        """Reserve the id BullMQ would give the next job (same counter), to use as `jobId`.

        Lets a caller write its own record of the job before the job exists in Redis. Add the
        job with `add_reserved`, which keeps the ids free of gaps.
        """
        return str(await self._commands.call("INCR", self._id_key))

    async def add_reserved(self, job_id: str, name: str, data: Any, **options: Any) -> str:
        """Add a job under an id from `next_id`; the id of the job Redis holds (another one's
        when `options` has a `deduplication` id that a job already holds).

        BullMQ's add script counts every add, custom id or not, which would leave every other
        id unused. Give that count back when no one else has counted since (a compare-and-
        decrement): ids stay 1, 2, 3… and an id is never handed out twice.
        """
        added = await self.add(name, data, jobId=job_id, **options)
        await self._give_back(int(job_id) + 1)
        return added

    async def add_custom(self, job_id: str, name: str, data: Any, **options: Any) -> str:
        """Add a job under a caller's own id (not a number: those are the counter's); the id of
        the job Redis holds. An id Redis already has is not added again (BullMQ's rule)."""
        if not is_custom_job_id(job_id):
            raise InvalidJobId(job_id)
        before = int(await self.client.get(self._id_key) or 0)
        added = await self.add(name, data, jobId=job_id, **options)
        await self._give_back(before + 1)  # the add counted one: give it back (as above)
        return added

    async def give_back_ids(self, top: int, count: int) -> None:
        """After adding `count` jobs under reserved ids (the highest `top`), a flow say: give
        back the `count` ids the add script counted, while no one else has counted since."""
        for k in range(count):
            expected = top + count - k
            if int(await self.client.get(self._id_key) or 0) != expected:
                return  # someone else added meanwhile: leave the gap, harmless
            await self._give_back(expected)

    async def _give_back(self, expected: int) -> None:
        # The job is queued all the same if this fails; an id left unused is harmless.
        with contextlib.suppress(*REDIS_FAILURES):
            await self._coalesced_give_back(keys=[self._id_key], args=[expected])

    async def deduplicated(self, dedup_id: str) -> str | None:
        """The id of the job holding deduplication id `dedup_id` (BullMQ's `deduplication`
        option), if that job is still in Redis."""
        holder = cast(str | None,
                      await self.client.get(f"{self.prefix}:{self.name}:de:{dedup_id}"))
        if holder is None or not await self.client.exists(f"{self.prefix}:{self.name}:{holder}"):
            return None
        return holder

    async def advance_ids(self, at_least: int) -> None:
        """Make sure the id counter is at least `at_least` (ids already used elsewhere)."""
        current = int(await self.client.get(self._id_key) or 0)
        if current < at_least:
            await self.client.incrby(self._id_key, at_least - current)

    async def add_bulk(
        self, jobs: Sequence[tuple[str, Any] | tuple[str, Any, dict[str, Any]]]
    ) -> list[str]:
        """Add `jobs` (name, data[, BullMQ job options]) all or none, in one transaction (on a
        Redis Cluster too, unlike the package's `addBulk`); their ids, in order."""
        defaults = self.defaults.job_options()
        entries = []
        for name, data, *rest in jobs:
            options = {**defaults, **(rest[0] if rest else {})}
            job_id = options.get("jobId")
            if job_id is not None and not is_job_id(str(job_id)):
                raise InvalidJobId(str(job_id))
            job = Job(self._queue, name, data, options)
            entries.append(BulkEntry(self._queue.backend.scripts, job))
        ids = await self._adder.add(entries)
        await self._wait_for_replicas()
        return ids

    async def add_flow(self, flow: dict[str, Any]) -> dict[str, Any]:
        """Add a BullMQ flow (a parent job that runs once its children have completed; the tree
        as `FlowProducer.add` takes it, `queueName` on every node) in one transaction, on a
        Redis Cluster too. Returns the tree of `Job`s. On a cluster every queue of the flow
        must share this queue's hash-tagged prefix (one slot)."""
        if self._flows is None:
            self._flows = FlowProducer({"connection": self.client, "prefix": self.prefix})
        entries: list[dict[str, Any]] = []
        parent = (flow.get("opts") or {}).get("parent")
        tree = cast(dict[str, Any], await self._flows.addNode(
            flow, {"parentOpts": parent}, None, entries))
        await self._adder.add([
            BulkEntry(entry["job"].queue.backend.scripts, entry["job"], entry["is_parent"])
            for entry in entries])
        await self._wait_for_replicas()
        return tree

    async def _wait_for_replicas(self) -> None:
        """With `replica_wait`, return once enough replicas have what this process has written
        so far (its adds included): WAIT on a connection whose own last write is later."""
        wanted = self.replica_wait.replicas
        if not wanted:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self._replication_mark, "1")  # WAIT counts from this connection's write
            pipe.execute_command("WAIT", wanted, self.replica_wait.timeout_ms)
            _, acked = await pipe.execute()
        if int(acked) < wanted:
            log.warning("Only %d of %d replicas confirmed a job of queue %r within %d ms: a "
                        "failover now could lose it", int(acked), wanted, self.name,
                        self.replica_wait.timeout_ms)

    # -- reading ------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobView | None:
        if not is_job_id(job_id):
            return None  # a queue key, never a job: not read
        # State first, then the hash: a job finishing in between then reads as still active
        # (its result already there), never as completed without its result.
        state = await self._queue.getJobState(job_id)
        job = await Job.fromId(self._queue, job_id)
        if job is None:
            return await self._tombstone(job_id)
        if state in ("waiting", "prioritized") and await self.is_paused():
            state = "paused"
        return JobView.from_job(job, state)

    async def list_jobs(self, states: list[str] | None = None, limit: int = 10) -> list[JobView]:
        """The most recent jobs in `states` (all states by default), newest first."""
        wanted = set(states or ALL_STATES)
        paused = await self.is_paused()
        if paused and "paused" in wanted:
            wanted |= {"waiting", "prioritized"}
        views: list[JobView] = []
        for state in ALL_STATES:
            shown = "paused" if paused and state in ("waiting", "prioritized") else state
            if shown not in wanted:
                continue
            # Per state so each view carries its state without another round trip per job.
            jobs = await self._queue.getJobs([state], 0, limit - 1, False)
            views.extend(JobView.from_job(job, shown) for job in jobs if job is not None)
        if "cancelled" in wanted or "failed" in wanted:
            views.extend(await self._recent_tombstones(limit))
        views.sort(key=lambda v: v.created_at_ms or 0, reverse=True)
        return views[:limit]

    async def counts(self) -> dict[str, int]:
        raw = await self._queue.getJobCounts(*ALL_STATES)
        counts = {state: int(raw.get(state, 0)) for state in ALL_STATES}
        # "prioritized" is how BullMQ stores waiting jobs with a priority: still waiting.
        counts["waiting"] += counts.pop("prioritized")
        # BullMQ pauses a queue with a flag and leaves its jobs in the wait list; a paused
        # queue's waiting jobs are what the seeds call "paused".
        if await self.is_paused():
            counts["paused"] += counts["waiting"]
            counts["waiting"] = 0
        return counts

    async def count_in(self, *states: str) -> dict[str, int]:
        """BullMQ's own counts of the given states (`prioritized` apart from `waiting`)."""
        raw = await self._queue.getJobCounts(*states)
        return {state: int(raw.get(state, 0)) for state in states}

    async def page(self, states: list[str], start: int = 0, end: int = -1, *,
                   asc: bool = True, shown: str | None = None) -> list[JobView]:
        """Jobs `start`..`end` (inclusive, BullMQ's way; `end=-1`: to the last) of the
        concatenation of `states`, in that order, each state in BullMQ's order (`asc`: oldest
        first). BullMQ's own multi-state `getJobs` pages each state separately; this pages the
        whole. Views carry their state (or `shown`)."""
        counts = await self.count_in(*states)
        views: list[JobView] = []
        offset = 0
        for state in states:
            n = counts[state]
            last = offset + n - 1 if end < 0 else min(end, offset + n - 1)
            first = max(start, offset)
            if first <= last:
                jobs = await self._queue.getJobs([state], first - offset, last - offset, asc)
                views.extend(JobView.from_job(job, shown or state)
                             for job in jobs if job is not None)
            offset += n
        return views

    async def clean_in(self, state: str, older_than_ms: int, limit: int = 0) -> list[str]:
        """Remove jobs of one state older than `older_than_ms` (finished: by when they
        finished; waiting or delayed: by when they were added; active: only those no worker
        holds) and return their ids. `limit` 0: all of them."""
        key = "wait" if state == "waiting" else state
        return [str(i) for i in await self._queue.clean(older_than_ms, limit, key)]

    async def metrics(self, kind: str, minutes: int = 60) -> QueueMetrics:
        """BullMQ's per-minute counts of `kind` ("completed" or "failed") jobs, as workers
        with metrics on (Node's `metrics` option, our `metrics_minutes`) record them."""
        if kind not in ("completed", "failed"):
            raise ValueError(f"metrics of {kind!r}: completed or failed")
        base = self._queue.toKey(f"metrics:{kind}")
        async with transaction(self.client, base) as pipe:
            pipe.hmget(base, "count", "prevTS", "prevCount")
            pipe.lrange(f"{base}:data", 0, max(minutes - 1, 0))
            (total, prev_ts, prev_count), points = await pipe.execute()
        # BullMQ's collectMetrics pushes a minute's count when the first job of a later
        # minute finishes: the count gained since `prevTS` is that minute's, and the minutes
        # since, in which nothing finished, are not in the list yet.
        pending = int(total or 0) - int(prev_count or 0)
        idle = 0
        if prev_ts:
            idle = max(0, int(time.time() * 1000) // 60_000 - int(prev_ts) // 60_000)
        per_minute = [0] * idle + [pending] + [int(p or 0) for p in points]
        return QueueMetrics(total=int(total or 0), per_minute=per_minute[:max(minutes, 1)])

    async def is_paused(self) -> bool:
        return bool(await self._queue.isPaused())

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    # -- managing -----------------------------------------------------------------------------

    async def pause(self) -> None:
        await self._queue.pause()

    async def resume(self) -> None:
        await self._queue.resume()

    async def clean(self, older_than_ms: int, limit: int = 0) -> int:
        """Remove completed and failed jobs finished more than `older_than_ms` ago."""
        removed = 0
        for state in ("completed", "failed"):
            removed += len(await self.clean_in(state, older_than_ms, limit))
        cutoff = int(time.time() * 1000) - older_than_ms
        stale = await self.client.zrangebyscore(self._tombstone_order, "-inf", cutoff)
        if stale:
            await self.client.hdel(self._tombstones, *stale)
            await self.client.zrem(self._tombstone_order, *stale)
            removed += len(stale)
        return removed

    async def retry(self, job_id: str) -> None:
        if not is_job_id(job_id):
            raise KeyError(job_id)
        job = await Job.fromId(self._queue, job_id)
        if job is None:
            view = await self._tombstone(job_id)
            if view is None:
                raise KeyError(job_id)
            raise JobNotRetryable("cancelled before it started")
        state = await self._queue.getJobState(job_id)
        if state != "failed":
            raise JobNotRetryable(state)
        await self.client.srem(cancel_requests_key(self.prefix, self.name), job_id)
        await job.retry("failed", {"resetAttemptsMade": True, "resetAttemptsStarted": True})

    async def children(self, job_id: str) -> list[tuple[str, str]]:
        """A flow parent's children, as (queue, job id), in no particular order: those it
        waits for, those completed, and those failed (its failure or ignored); ordered by
        queue, then id."""
        if not is_job_id(job_id):
            return []
        key = f"{self.prefix}:{self.name}:{job_id}"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.smembers(f"{key}:dependencies")
            pipe.hkeys(f"{key}:processed")
            pipe.hkeys(f"{key}:failed")
            pipe.zrange(f"{key}:unsuccessful", 0, -1)
            replies = await pipe.execute()
        found: list[tuple[str, str]] = []
        for child in {str(k) for reply in replies for k in reply}:
            # `<prefix>:<queue>:<id>`: the prefix may hold colons, a queue name never does.
            queue, _, child_id = child.removeprefix(f"{self.prefix}:").partition(":")
            if child_id:
                found.append((queue, child_id))
        return sorted(found, key=lambda c: (c[0], len(c[1]), c[1]))  # "2" before "10"

    async def update_data(self, job_id: str, data: Any) -> None:
        """Replace the data of a job Redis holds (BullMQ's `updateData`); KeyError if none."""
        job = await Job.fromId(self._queue, job_id) if is_job_id(job_id) else None
        if job is None:
            raise KeyError(job_id)
        await job.updateData(data)

    async def cancel(self, job_id: str, *, wait_s: float = 5.0) -> CancelOutcome:
        """Cancel a job that has not finished.

        A pending job is removed from the queue and a tombstone keeps it visible as cancelled.
        An active job's worker is told to stop it; we wait up to `wait_s` for it to fail.
        """
        if not is_job_id(job_id):
            return CancelOutcome.NOT_FOUND
        job = await Job.fromId(self._queue, job_id)
        if job is None:
            return CancelOutcome.NOT_FOUND
        state = await self._queue.getJobState(job_id)
        if state in FINISHED_STATES:
            return CancelOutcome.ALREADY_FINISHED
        # Recorded first so a worker that picks the job up at this very moment drops it.
        await self.client.sadd(cancel_requests_key(self.prefix, self.name), job_id)
        if state in PENDING_STATES and await self.remove(job_id):
            await self._write_tombstone(JobView.from_job(job, state))
            await self.client.srem(cancel_requests_key(self.prefix, self.name), job_id)
            return CancelOutcome.CANCELLED
        # Read the events stream from here on, so the worker's "failed" cannot slip past.
        events = f"{self.prefix}:{self.name}:events"
        last = cast(list[StreamEntry], await self.client.xrevrange(events, count=1))
        await self.client.publish(cancel_channel(self.prefix, self.name), job_id)
        await self._wait_finished(job_id, events, last[0][0] if last else "0-0", wait_s)
        return CancelOutcome.REQUESTED

    async def request_cancel(self, job_ids: list[str]) -> None:
        """Note that `job_ids` are being cancelled (a worker that takes one drops it); then
        `remove_requested`. Between the two the caller records the cancellations."""
        if job_ids:
            await self.client.sadd(cancel_requests_key(self.prefix, self.name), *job_ids)

    async def remove_requested(self, job_ids: list[str]) -> list[str]:
        """Remove the jobs of a `request_cancel` that no worker holds and return their ids; a
        worker holding one (it started meanwhile) is told to stop it, as `cancel` does."""
        removed: list[str] = []
        for start in range(0, len(job_ids), 50):
            chunk = job_ids[start:start + 50]
            done = await asyncio.gather(*(self.remove(job_id) for job_id in chunk))
            removed.extend(job_id for job_id, ok in zip(chunk, done, strict=True) if ok)
        requests = cancel_requests_key(self.prefix, self.name)
        if removed:
            await self.client.srem(requests, *removed)
        gone = set(removed)
        for job_id in job_ids:
            if job_id in gone:
                continue
            if await self._queue.getJobState(job_id) == "active":
                await self.client.publish(cancel_channel(self.prefix, self.name), job_id)
            else:
                await self.client.srem(requests, job_id)  # finished or vanished meanwhile
        return removed

    async def _wait_finished(self, job_id: str, events: str, after: str, wait_s: float) -> None:
        """Until `job_id` completes or fails (BullMQ's events stream says so) or `wait_s` ends."""
        if await self._queue.getJobState(job_id) in FINISHED_STATES:
            return
        # Block in slices shorter than the client's socket timeout (the API's client has one).
        timeout = socket_timeout_of(self.client)
        slice_s = min(1.0, timeout / 2) if timeout else 1.0
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            block_ms = max(1, int(min(left, slice_s) * 1000))
            read = await self.client.xread({events: after}, block=block_ms)
            for _, entries in cast(list[tuple[str, list[StreamEntry]]], read or []):
                for entry_id, fields in entries:
                    after = entry_id
                    if fields.get("jobId") == job_id and fields.get("event") in FINISHED_EVENTS:
                        return

    async def last_event_id(self) -> str:
        """The id of the events stream's last entry ("0-0" while it has none)."""
        events = f"{self.prefix}:{self.name}:events"
        last = cast(list[StreamEntry], await self.client.xrevrange(events, count=1))
        return last[0][0] if last else "0-0"

    async def events(self, after: str | None = None) -> AsyncIterator[StreamEntry]:
        """Entries of the queue's events stream (BullMQ's, which Node `QueueEvents` reads too)
        from after `after` (default: the last entry written now), as they are written: a
        blocking XREAD, in slices shorter than the client's socket timeout."""
        events = f"{self.prefix}:{self.name}:events"
        if after is None:
            after = await self.last_event_id()
        timeout = socket_timeout_of(self.client)
        block_ms = int(min(5.0, timeout / 2 if timeout else 5.0) * 1000)
        while True:
            read = await self.client.xread({events: after}, block=max(1, block_ms), count=500)
            for _, entries in cast(list[tuple[str, list[StreamEntry]]], read or []):
                for entry in entries:
                    after = entry[0]
                    yield entry

    async def promote(self, job_id: str) -> bool:
        """Make a delayed job due now; False if it is not delayed (or unknown)."""
        if not is_job_id(job_id):
            return False
        try:
            await self._queue.backend.promote(job_id)
        except TypeError as exc:  # how the package reports "not in the delayed state"
            if "not in the delayed state" in str(exc):
                return False
            raise
        return True

    async def logs(self, job_id: str, limit: int = 200) -> list[str]:
        """The last `limit` lines a job's handler logged (`ctx.log`), oldest first."""
        if not is_job_id(job_id):
            return []
        key = self._queue.toKey(f"{job_id}:logs")
        return [str(line) for line in await self.client.lrange(key, -limit, -1)]

    async def remove(self, job_id: str) -> bool:
        """Delete a job that no worker holds; False if it is locked by one (or no job)."""
        if not is_job_id(job_id):
            return False
        return bool(await self._queue.backend.remove(job_id, True))

    async def close(self) -> None:
        await self._queue.close()

    # -- tombstones of jobs cancelled before they ran -----------------------------------------

    async def _write_tombstone(self, view: JobView) -> None:
        now = int(time.time() * 1000)
        tomb = {
            **view.to_json(),
            "state": "cancelled",
            "failed_reason": CANCELLED_REASON,
            "finished_at_ms": now,
        }
        async with transaction(self.client, self._tombstones) as pipe:
            pipe.hset(self._tombstones, view.id, json.dumps(tomb))
            pipe.zadd(self._tombstone_order, {view.id: now})
            await pipe.execute()
        # Keep as many as failed jobs are kept.
        excess = await self.client.zrange(
            self._tombstone_order, 0, -(self.defaults.keep_failed + 1)
        )
        if excess:
            await self.client.hdel(self._tombstones, *excess)
            await self.client.zrem(self._tombstone_order, *excess)

    async def forget_tombstone(self, job_id: str) -> None:
        """Drop the tombstone of a job about to be queued again under the same id."""
        if not is_job_id(job_id):
            return
        async with transaction(self.client, self._tombstones) as pipe:
            pipe.hdel(self._tombstones, job_id)
            pipe.zrem(self._tombstone_order, job_id)
            await pipe.execute()

    async def _tombstone(self, job_id: str) -> JobView | None:
        raw = await self.client.hget(self._tombstones, job_id)
        return JobView.from_json(json.loads(raw)) if raw else None

    async def _recent_tombstones(self, limit: int) -> list[JobView]:
        ids = await self.client.zrevrange(self._tombstone_order, 0, limit - 1)
        if not ids:
            return []
        raws = await self.client.hmget(self._tombstones, [str(i) for i in ids])
        return [JobView.from_json(json.loads(raw)) for raw in raws if raw]
