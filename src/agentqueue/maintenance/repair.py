"""The repair service: brings job records back in line with Redis after a crash.

A maintenance duty in the style of River's (run by `maintenance.runner`, one process at a
time): each pass looks at records that have not moved for a while and whose submission lease
(`submitting_until`) has run out, and
- a `pending` or `queued` record whose job is missing from Redis, and not started since it was
  (re)queued, is queued again (the API died between writing the record and queueing the job);
- a `queued` or `active` record whose job finished in Redis takes the outcome from Redis (a
  worker died between finishing the job and writing the record);
- any other record whose job vanished from Redis is marked failed, saying so.

It never races a live writer: a submission in progress holds a lease on its record, and every
write here is a compare-and-set on the version read, so a record someone moved meanwhile (a
worker completing it, another repairer) is left alone and a finished record is never reopened.
Before queueing a job again it claims the record with a lease of its own, and only then adds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentqueue.core import priority as priorities
from agentqueue.engine.queue import JobQueue
from agentqueue.handlers.metering import JobMeter
from agentqueue.records.store import Records
from agentqueue.records.views import JobRecordView

log = logging.getLogger("agentqueue.repair")

VANISHED = "the job vanished from the queue before its outcome was recorded"


@dataclass
class RepairReport:
    requeued: int = 0
    updated: int = 0


class RepairService:
    def __init__(
        self,
        records: Records,
        queues: dict[str, JobQueue],
        *,
        settle_s: float = 5.0,
        lease_s: float = 30.0,
        open_queue: Callable[[str], JobQueue] | None = None,
    ) -> None:
        self.records = records
        self.queues = queues
        # Opens a queue this process was not told of (a job type of an App it does not load):
        # whichever process holds the duty, every queue with records is repaired.
        self.open_queue = open_queue
        self._opened: dict[str, JobQueue] = {}
        # Records younger than this are left alone: their writer may still be at work.
        self.settle_s = settle_s
        # How long a claim to queue a job again keeps other repairers off the record.
        self.lease_s = lease_s

    async def run_pass(self) -> None:
        """One round of repair, logged: the maintenance duty (see `maintenance.duties`)."""
        report = await self.run_once()
        if report.requeued or report.updated:
            log.info("Repaired records: %d queued again, %d brought up to date",
                     report.requeued, report.updated)

    async def run_once(self) -> RepairReport:
        report = RepairReport()
        before = datetime.now(UTC) - timedelta(seconds=self.settle_s)
        # `awaiting`: parked for a person's approval (core.approvals), a delayed job in Redis.
        for record in await self.records.in_status_since(
                ["pending", "queued", "active", "awaiting"], before):
            queue = self._queue(record.queue)
            if queue is not None:
                await self._repair(record, queue, report)
        return report

    def _queue(self, name: str) -> JobQueue | None:
        queue = self.queues.get(name, self._opened.get(name))
        if queue is None and self.open_queue is not None:
            queue = self._opened[name] = self.open_queue(name)
        return queue

    async def _repair(self, record: JobRecordView, queue: JobQueue, report: RepairReport) -> None:
        view = await queue.get(record.job_id)
        if view is None:
            if record.status == "pending" or (record.status == "queued"
                                              and record.attempts_made == 0):
                if await self._queue_again(record, queue):
                    report.requeued += 1
            elif await self.records.mark(record.queue, record.job_id, "failed", error=VANISHED,
                                         message=VANISHED, expect_version=record.version):
                report.updated += 1
            return
        if view.state not in ("completed", "failed", "cancelled"):
            return
        meter = JobMeter(queue.client, prefix=queue.prefix, queue=queue.name, job_id=view.id)
        usage = (await meter.usage()).totals
        if view.state == "completed":
            copied = await self.records.mark(
                record.queue, record.job_id, "completed", attempt=view.attempts_made,
                result=view.result, usage=usage, progress=100,
                message="outcome copied from Redis", expect_version=record.version)
        else:
            copied = await self.records.mark(
                record.queue, record.job_id, view.state, attempt=view.attempts_made,
                error=view.failed_reason, usage=usage, message="outcome copied from Redis",
                expect_version=record.version)
        if copied:
            report.updated += 1

    async def _queue_again(self, record: JobRecordView, queue: JobQueue) -> bool:
        """Claim the record (it must not have moved since it was read), then add its job under
        the same id. False if someone else moved the record first."""
        lease = datetime.now(UTC) + timedelta(seconds=self.lease_s)
        claimed = await self.records.claim(
            record.queue, record.job_id, version=record.version, status="queued",
            lease_until=lease, message="queued again: the job was missing from Redis")
        if claimed is None:
            return False
        options: dict[str, Any] = {"jobId": record.job_id, "attempts": record.max_attempts,
                                   "priority": priorities.stored(record.priority)}
        # If this fails the lease runs out and a later round tries again.
        await queue.add(record.type, record.data, **options)
        await self.records.release(record.queue, record.job_id, lease)
        return True
