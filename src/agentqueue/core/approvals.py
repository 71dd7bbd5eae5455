"""Human approval of tool calls: an agent job parked until a person approves or denies a call.

When the model asks for a tool that needs approval (an agent's `approvalRequired`, a job's
`requireApproval`), the worker writes the pending call to the job's approval gate (a Redis hash
beside the job: `agentqueue:<prefix>:<queue>:approval:<job id>`), marks its record `awaiting`
(`awaiting_approval` in every API) with the call in its progress, and moves the job to BullMQ's
delayed set until the approval's deadline: the worker slot is free and no lock is held while it
waits, and nothing but Redis and the record remembers it, so worker and API restarts lose
nothing. A decision (`decide`: the job's owner or an admin) is written to the gate and promotes
the job; the run resumes, replays its finished steps (`engine.steps`) and runs the approved
tool, or tells the model it was denied. Nobody deciding in time: the delayed job fires at the
deadline and the run fails, or takes it as a denial (`onApprovalTimeout`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import redis.asyncio as redis

from agentqueue.core.errors import JobConflict
from agentqueue.core.lookup import FoundJob, JobStores

Decision = Literal["approve", "deny"]
# The record status of a parked job (the column holds 16 characters) and its core state.
AWAITING = "awaiting"
AWAITING_STATE = "awaiting_approval"
GATE_TTL_S = 31 * 24 * 3600  # past the longest approval timeout allowed

# Set the decision only if a call is pending and none is decided yet: one decision per call.
_DECIDE = """
if redis.call('HEXISTS', KEYS[1], 'pending') == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'decision', ARGV[1]) == 0 then return 0 end
return 1
"""


def gate_key(prefix: str, queue: str, job_id: str) -> str:
    return f"agentqueue:{prefix}:{queue}:approval:{job_id}"


class ApprovalGate:
    """The approval state of one job: the call pending (if any) and the decision on it."""

    def __init__(self, client: redis.Redis, *, prefix: str, queue: str, job_id: str) -> None:
        self.client = client
        self.key = gate_key(prefix, queue, job_id)

    async def read(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        raw = await self.client.hgetall(self.key)
        pending, decision = raw.get("pending"), raw.get("decision")
        return (json.loads(pending) if pending else None,
                json.loads(decision) if decision else None)

    async def request(self, pending: dict[str, Any]) -> None:
        """Ask for a decision on `pending` (any earlier decision is void)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.key, "decision")
            pipe.hset(self.key, "pending", json.dumps(pending))
            pipe.expire(self.key, GATE_TTL_S)
            await pipe.execute()

    async def decide(self, decision: Decision, reason: str | None, by: str) -> int:
        """1: decided; 0: already decided; -1: nothing pending."""
        value = json.dumps({"decision": decision, "reason": reason, "by": by,
                            "at": round(time.time() * 1000)})
        return int(await self.client.eval(_DECIDE, 1, self.key, value))

    async def clear(self) -> None:
        await self.client.delete(self.key)


def pending_call(progress: Any) -> dict[str, Any] | None:
    """The call a parked job waits on, from its progress (None: it waits on none)."""
    if isinstance(progress, dict) and isinstance(progress.get("approval"), dict):
        return dict(progress["approval"])
    return None


async def decide(stores: JobStores, queue: str, job_id: str, found: FoundJob,
                 decision: Decision, reason: str | None, by: str) -> dict[str, Any]:
    """Approve or deny the call the job waits on and let it run again; `JobConflict` if it
    waits on none (or it was decided already). Returns the call decided on."""
    if found.record is None or found.record.status != AWAITING:
        raise JobConflict(job_id, f"Job {job_id} is not awaiting approval")
    jobs = stores.queues[queue]
    gate = ApprovalGate(jobs.client, prefix=jobs.prefix, queue=queue, job_id=job_id)
    pending, _ = await gate.read()
    outcome = await gate.decide(decision, reason, by)
    if outcome != 1 or pending is None:
        raise JobConflict(job_id, f"Job {job_id} is not awaiting approval"
                          if outcome < 0 else f"the call job {job_id} waits on is decided")
    # Queued again (unless the record moved on meanwhile), then due now: a job not delayed any
    # more was promoted by its worker, which saw the decision itself.
    await stores.records.mark(queue, job_id, "queued", expect_version=found.record.version,
                              message=f"{'approved' if decision == 'approve' else 'denied'} "
                                      f"by {by}: {pending.get('tool')}")
    await jobs.promote(job_id)
    return pending
