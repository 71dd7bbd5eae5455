"""Jobs as `GET /api/jobs/:id` shows them, for push events (`agentqueue.push.Snapshots`).

The shape is `jobs.job_out`'s; what Redis knows is laid over it where the record has not caught
up yet (a worker's writes reach the record a group commit after Redis), so a `job-completed`
event carries the result and says `completed`.
"""

from __future__ import annotations

from typing import Any

from agentqueue.api.jobs import JobOut, job_out
from agentqueue.core import states
from agentqueue.engine.jobs import FINISHED_STATES, JobView
from agentqueue.engine.stream import event_json
from agentqueue.push import Snapshot
from agentqueue.push.feed import Final
from agentqueue.records.views import JobRecordView
from agentqueue.services import Services
from agentqueue.timefmt import iso_from_ms

_FINAL_OF: dict[str, Final] = {"completed": "completed", "failed": "failed",
                               "cancelled": "failed"}


def shown(record: JobRecordView, live: JobView | None,
          event: dict[str, str] | None = None) -> JobOut:
    """`job_out` of the record, brought up to what Redis (or the event just read) says."""
    out = job_out(record, live.progress if live is not None else None)
    if states.state_of_record(record.status) in FINISHED_STATES:
        return out  # the record has the last word once it has the outcome
    update: dict[str, Any] = {}
    if live is not None:
        update = {"status": states.of_state(live.state).seed001, "attempts": live.attempts_made,
                  "startedAt": out.startedAt or iso_from_ms(live.processed_at_ms)}
        if live.state in FINISHED_STATES:
            update.update(result=live.result, error=live.failed_reason,
                          completedAt=out.completedAt or iso_from_ms(live.finished_at_ms))
    elif event is not None and event.get("event") == "completed":  # gone from Redis already
        update = {"status": "completed", "result": event_json(event.get("returnvalue"))}
    elif event is not None and event.get("event") == "failed":
        update = {"status": "failed", "error": event.get("failedReason") or "failed"}
    return out.model_copy(update=update) if update else out


class JobSnapshots:
    """Seed 001's view of a job and its owner, from the records and the queues."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def snapshot(self, queue: str, job_id: str,
                       event: dict[str, str] | None = None) -> Snapshot | None:
        record = await self.services.records.get(queue, job_id)
        if record is None:  # added to Redis directly: no seed 001 shape (as GET answers 404)
            return None
        jobs = self.services.queues.get(queue)
        live = await jobs.get(job_id) if jobs is not None else None
        out = shown(record, live, event)
        return Snapshot(record.user_id, record.org_id, _FINAL_OF.get(out.status),
                        out.model_dump(mode="json"))
