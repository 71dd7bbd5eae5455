"""Accepting a job: its record is written before it is queued, and before the API answers.

The job's id is reserved from BullMQ's own counter first, so the record and the Redis job share
it (ids stay "1", "2", … as BullMQ users expect). The record goes `pending` → `queued` (seed
002's lifecycle) before the job is added: a worker may take the job the instant it is in Redis,
so nothing but the worker may set the status after the add. A record left `queued` without its
Redis job (a crash between the writes) is queued again by the repair service; the job is never
lost.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from agentqueue.admission import BacklogLimits
from agentqueue.engine.queue import JobQueue
from agentqueue.records.store import JobExistsError, Records
from agentqueue.records.views import JobOwner, JobRecordView

log = logging.getLogger("agentqueue.submission")


class UnknownQueue(KeyError):
    pass


class JobSubmitter:
    def __init__(self, queues: dict[str, JobQueue], records: Records,
                 limits: BacklogLimits | None = None) -> None:
        self.queues = queues
        self.records = records
        self.limits = limits

    def queue(self, name: str) -> JobQueue:
        try:
            return self.queues[name]
        except KeyError:
            raise UnknownQueue(name) from None

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
    ) -> JobRecordView:
        jobs = self.queue(queue)
        if self.limits is not None:  # before anything is reserved or written: a 429 leaves none
            await self.limits.check(queue, owner)
        job_id = await jobs.next_id()
        create = functools.partial(
            self.records.create_job, queue=queue, type=name, data=data, owner=owner, name=title,
            description=description, max_attempts=attempts or jobs.defaults.attempts,
            priority=priority or 0, status="pending",
        )
        try:
            record = await create(job_id=job_id)
        except JobExistsError:
            # Redis's id counter is behind the records (a new or flushed Redis): move it past.
            highest = await self.records.highest_numeric_job_id(queue)
            log.warning("Job ids of queue %r restart below recorded ones; moving the counter "
                        "to %d", queue, highest)
            await jobs.advance_ids(highest)
            job_id = await jobs.next_id()
            record = await create(job_id=job_id)
        # Queued before it is in Redis: once it is, a worker may take it at any instant, and
        # nothing but the worker may move the record on.
        await self.records.mark(queue, job_id, "queued")
        options: dict[str, Any] = {}
        if priority:
            options["priority"] = priority
        if delay_ms:
            options["delay"] = delay_ms
        if attempts:
            options["attempts"] = attempts
        try:
            await jobs.add_reserved(job_id, name, data, **options)
        except Exception:
            # Redis refused it: the record says so, the caller gets an error (no silent queueing).
            await self.records.mark(queue, job_id, "failed", error="could not be queued")
            raise
        return record.model_copy(update={"status": "queued"})
