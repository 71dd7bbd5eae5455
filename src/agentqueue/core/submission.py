"""Accepting a job: its record is written before it is queued, and before the API answers.

The job's id is reserved from BullMQ's own counter first, so the record and the Redis job share
it (ids stay "1", "2", … as BullMQ users expect). The record is written `queued`, with the
`pending` → `queued` history of seed 002's lifecycle, in one write before the job is added: a
worker may take the job the instant it is in Redis, so nothing but the worker may set the status
after the add. Records of concurrent submissions share one transaction (group commit, see
`agentqueue.records.batching`), and so do the lease ends after their adds; each submission
still waits for its own record's commit before the add, and the add before it answers (the lease
end it does not wait for: the job is in Redis by then, and a lease left behind runs out).

The submitter holds a lease on the record (`submitting_until`) from its creation until the add
is done; the repair service leaves leased records alone, so a slow submission and the repair
service never both queue a job (and if a lease ran out first, both add under the same id,
which BullMQ takes once).

When the add fails, what the caller hears depends on whether Redis may have the job:
- certainly not (no connection was ever handed out for the add, or Redis answered with an error
  and has no such job): the record is deleted and `NotQueued` raised (the API answers 503);
- maybe (a timeout or a dropped connection after a connection was handed out): the record stays
  `queued` under its lease and the job counts as accepted. When the lease runs out, the repair
  service settles it from Redis: it queues the job again under the same id if Redis lacks it
  (BullMQ ignores an add of an id it already has).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError

from agentqueue import tracing
from agentqueue.core import priority as priorities
from agentqueue.core.admission import BacklogLimits
from agentqueue.core.budgets import Budgets
from agentqueue.engine.connection import REDIS_FAILURES, watch_sends
from agentqueue.engine.jobs import is_custom_job_id
from agentqueue.engine.queue import InvalidJobId, JobQueue
from agentqueue.records.store import JobExistsError, Records
from agentqueue.records.views import JobOwner, JobRecordView

log = logging.getLogger("agentqueue.submission")

# Longer than a submission can take with the request client's bounded Redis calls.
DEFAULT_LEASE_S = 30.0


class UnknownQueue(KeyError):
    pass


class NotQueued(Exception):
    """Redis certainly did not take the job, and no record of it was kept."""


@dataclass(frozen=True)
class Accepted:
    """A submission's outcome: the job that holds it, and whether that job was there before
    (same job id or deduplication id), so this submission queued nothing."""

    queue: str
    job_id: str
    record: JobRecordView | None  # None for a job a plain BullMQ producer added
    existing: bool


class JobSubmitter:
    def __init__(
        self,
        queues: dict[str, JobQueue],
        records: Records,
        limits: BacklogLimits | None = None,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        budgets: Budgets | None = None,
    ) -> None:
        self.queues = queues
        self.records = records
        self.limits = limits
        self.lease_s = lease_s
        # Organizations' budgets: a job they cannot take is refused (BudgetExceeded).
        self.budgets = budgets
        # Told (queue, job type) of each job queued (the metrics' enqueued counter).
        self.on_queued: Callable[[str, str], None] | None = None

    def queue(self, name: str) -> JobQueue:
        try:
            return self.queues[name]
        except KeyError:
            raise UnknownQueue(name) from None

    def lease(self) -> datetime:
        """The end of a lease taken now."""
        return datetime.now(UTC) + timedelta(seconds=self.lease_s)

    async def submit(
        self,
        *,
        queue: str,
        name: str,
        data: dict[str, Any],
        owner: JobOwner,
        title: str | None = None,
        description: str | None = None,
        priority: int | None = None,
        delay_ms: int | None = None,
        attempts: int | None = None,
        backoff: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> JobRecordView:
        """Record, then queue, a job. `priority` is BullMQ's (1 runs first; see
        `agentqueue.core.priority`); none gives the normal one, so the job waits its turn
        among prioritized jobs instead of overtaking them all. `options`: as `accept`'s."""
        accepted = await self.accept(
            queue=queue, name=name, data=data, owner=owner, title=title,
            description=description, priority=priority, delay_ms=delay_ms, attempts=attempts,
            backoff=backoff, options=options)
        assert accepted.record is not None  # a new job always has its record
        return accepted.record

    async def accept(
        self,
        *,
        queue: str,
        name: str,
        data: dict[str, Any],
        owner: JobOwner,
        title: str | None = None,
        description: str | None = None,
        priority: int | None = None,
        delay_ms: int | None = None,
        attempts: int | None = None,
        backoff: dict[str, Any] | None = None,
        job_id: str | None = None,
        deduplication: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Accepted:
        """`submit`, with a caller's own `job_id` (not a number) and BullMQ's `deduplication`
        (`{"id": key, "ttl": ms}`), and further BullMQ job `options` (timeout, expiresAt,
        removeOnComplete, removeOnFail) stored with the job.

        A job id names one job of its queue for good (its record keeps it), and a
        deduplication id one job while BullMQ holds it: a second submission with either is
        not queued, and answers the job that holds it (`Accepted.existing`).
        """
        jobs = self.queue(queue)
        bull_priority = priorities.from_bullmq(priority)
        if job_id is not None and not is_custom_job_id(job_id):
            raise InvalidJobId(job_id)
        found = await self._existing(jobs, job_id, deduplication)
        if found is not None:
            return found
        if self.budgets is not None:  # before anything is written: a refusal leaves nothing
            await self.budgets.admit(owner, data)
        if self.limits is not None:  # before anything is reserved or written: a 429 leaves none
            await self.limits.check(queue, owner)
        # Recorded as queued (having been pending: seed 002's lifecycle) in one write, before
        # the add: once the job is in Redis a worker may take it at any instant, and nothing
        # but the worker may move the record on. The lease keeps the repair service off it.
        create = functools.partial(
            self.records.create_job, queue=queue, type=name, data=data, owner=owner, name=title,
            description=description, max_attempts=attempts or jobs.defaults.attempts,
            priority=bull_priority, status="queued", passed_through=("pending",),
        )
        if job_id is not None:
            try:
                record = await create(job_id=job_id, lease_until=self.lease())
            except JobExistsError:  # submitted at this very moment by someone else
                return Accepted(queue, job_id, await self.records.get(queue, job_id), True)
        else:
            record = await self._create_numbered(jobs, create)
        if self.budgets is not None:  # tenant limits read the owner here, not from SQL
            await self.budgets.limits.note_owner(queue, record.job_id, owner)
        bull_options: dict[str, Any] = {**(options or {}), "priority": bull_priority}
        if delay_ms:
            bull_options["delay"] = delay_ms
        if attempts:
            bull_options["attempts"] = attempts
        if backoff:
            bull_options["backoff"] = backoff
        if deduplication:
            bull_options["deduplication"] = deduplication
        with tracing.span(f"send {queue}", kind="producer", attributes={
                "messaging.system": "bullmq", "messaging.destination.name": queue,
                "messaging.message.id": record.job_id, "agentqueue.job.type": name}):
            telemetry = tracing.job_telemetry()  # the worker's span continues this one
            if telemetry is not None:
                bull_options["telemetry"] = telemetry
            queued, held_by = await self._queue_job(jobs, record, name, data, bull_options)
        if held_by == record.job_id:
            if self.on_queued is not None:
                self.on_queued(queue, name)
            return Accepted(queue, record.job_id, queued, False)
        # Another submission took the deduplication id between our look and our add: ours was
        # not queued, so its record goes.
        await self._forget(queued, queued.version)
        return Accepted(queue, held_by, await self.records.get(queue, held_by), True)

    async def _existing(
        self, jobs: JobQueue, job_id: str | None, deduplication: dict[str, Any] | None
    ) -> Accepted | None:
        """The job that already holds `job_id` or the deduplication id, if one does."""
        if job_id is not None:
            record = await self.records.get(jobs.name, job_id)
            if record is not None or await jobs.get(job_id) is not None:
                return Accepted(jobs.name, job_id, record, True)
        if deduplication and not deduplication.get("replace"):  # debounce: BullMQ decides
            holder = await jobs.deduplicated(str(deduplication["id"]))
            if holder is not None:
                return Accepted(jobs.name, holder, await self.records.get(jobs.name, holder),
                                True)
        return None

    async def _create_numbered(
        self, jobs: JobQueue, create: Callable[..., Awaitable[JobRecordView]]
    ) -> JobRecordView:
        """The record of a new job under the next id of BullMQ's counter."""
        job_id = await jobs.next_id()
        try:
            return await create(job_id=job_id, lease_until=self.lease())
        except JobExistsError:
            # Redis's id counter is behind the records (a new or flushed Redis): move it past.
            highest = await self.records.highest_numeric_job_id(jobs.name)
            log.warning("Job ids of queue %r restart below recorded ones; moving the counter "
                        "to %d", jobs.name, highest)
            await jobs.advance_ids(highest)
            job_id = await jobs.next_id()
            return await create(job_id=job_id, lease_until=self.lease())

    async def _queue_job(
        self, jobs: JobQueue, record: JobRecordView, name: str, data: dict[str, Any],
        options: dict[str, Any],
    ) -> tuple[JobRecordView, str]:
        """The record as it now stands, and the id of the job Redis holds for it: its own, or
        that of the job holding its deduplication id."""
        queue, job_id = record.queue, record.job_id
        lease = record.submitting_until
        assert lease is not None  # created under the submission's lease
        with watch_sends(jobs.client) as watch:
            try:
                if job_id.isdigit():
                    held_by = await jobs.add_reserved(job_id, name, data, **options)
                else:
                    held_by = await jobs.add_custom(job_id, name, data, **options)
            except Exception as exc:
                if (await self._certainly_not_queued(jobs, job_id, exc, watch.may_have_sent)
                        and await self._forget(record, record.version)):
                    raise NotQueued(f"job {job_id} of {queue!r} was not queued") from exc
                # It may be in Redis: accepted. The lease runs out and the repair service
                # settles the record from Redis.
                log.warning("Job %s of %r may not have reached Redis (%s: %s); the repair "
                            "service will make sure it is queued", job_id, queue,
                            type(exc).__name__, exc)
                return record, job_id
        if held_by != job_id:
            return record, held_by  # not queued: the caller deletes the record, lease and all
        # The job is in Redis: it is accepted whatever the records say now, so the caller need
        # not wait for the lease's end (one commit fewer per submission). Written with the next
        # group commit; should that fail, the lease runs out by itself and the record follows
        # the worker's events.
        self.records.end_lease_soon(queue, job_id, lease)
        return record.model_copy(update={"submitting_until": None}), held_by

    @staticmethod
    async def _certainly_not_queued(
        jobs: JobQueue, job_id: str, error: Exception, may_have_sent: bool
    ) -> bool:
        if not may_have_sent:
            return True  # no connection was handed out: nothing reached Redis
        if isinstance(error, ResponseError):
            # Redis answered, so it is reachable: it refused this add, but an earlier attempt of
            # the same add (a retry after a dropped connection) may have gone through.
            try:
                return await jobs.get(job_id) is None
            except REDIS_FAILURES:
                return False
        return False

    async def _forget(self, record: JobRecordView, version: int) -> bool:
        """Delete the record of a job that was not queued, unless someone else has moved it on
        (then it is theirs: the job counts as accepted). False if the record stays."""
        try:
            return await self.records.delete_job(record.queue, record.job_id, version=version)
        except Exception:
            log.exception("Could not delete the record of unqueued job %s of %r; the repair "
                          "service will queue it", record.job_id, record.queue)
            return False
