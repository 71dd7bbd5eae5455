"""BullMQ's debounce (`deduplication: {replace: true}`): an add while the held job is still
delayed removes that job and adds the new one. Redis does it in the add script; this keeps the
records in step: the job replaced never runs, so its record reads as cancelled, naming the job
that replaced it."""

from __future__ import annotations

import logging
from typing import Any

from agentqueue.core.submission import Accepted
from agentqueue.engine.queue import JobQueue
from agentqueue.records.store import Records

log = logging.getLogger("agentqueue.submission")


def replaced_message(job_id: str) -> str:
    return f"replaced by job {job_id} (debounce)"


async def held_before(jobs: JobQueue, deduplication: dict[str, Any] | None) -> str | None:
    """The job a debounced add may replace: the one holding its deduplication id now."""
    if not deduplication or not deduplication.get("replace"):
        return None
    return await jobs.deduplicated(str(deduplication["id"]))


async def settle_replaced(records: Records, jobs: JobQueue, previous: str | None,
                          accepted: Accepted) -> None:
    """Record the job `previous` as cancelled if the add replaced it (a new job was queued and
    `previous` is gone from Redis)."""
    if previous is None or accepted.existing or previous == accepted.job_id:
        return
    try:
        if await jobs.get(previous) is not None:
            return  # still there (it had started): not replaced
        reason = replaced_message(accepted.job_id)
        await records.mark(jobs.name, previous, "cancelled", error=reason, message=reason)
    except Exception as exc:
        # The new job is queued all the same. The old record stays queued, and the repair
        # service, finding its job gone from Redis, queues it again: it runs once more.
        log.warning("Could not record job %s of %r as replaced (%s); the repair service may "
                    "run it again", previous, jobs.name, type(exc).__name__)
