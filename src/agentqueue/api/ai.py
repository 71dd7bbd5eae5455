"""The AI tasks API of seed 004: queue a completion, read its job, cancel it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agentqueue.api.access import Caller, ServicesDep
from agentqueue.api.edge import EdgeRoute
from agentqueue.api.idempotency import IDEMPOTENT
from agentqueue.api.openapi import error_responses
from agentqueue.api.schemas.ai_requests import CompletionInput
from agentqueue.api.submit import model_data, served_type, validated_data
from agentqueue.core import states
from agentqueue.core.actions import cancel_job
from agentqueue.core.approvals import AWAITING, pending_call
from agentqueue.core.lookup import find_job, owner_of

router = APIRouter(tags=["AI tasks (seed 004)"], route_class=EdgeRoute)
COMPLETION = "generate-completion"


@router.post("/ai/queue", status_code=201, dependencies=[IDEMPOTENT])
async def queue_ai_task(
    body: CompletionInput, services: ServicesDep, caller: Caller
) -> dict[str, Any]:
    """Queue a completion; with `conversationId` the reply joins that conversation."""
    job_type = served_type(services, COMPLETION)
    data = validated_data(services, job_type, model_data(body), field="")
    data["userId"] = caller.user_id  # the caller, never a user id the client wrote
    record = await services.submitter.submit(
        queue=job_type.queue_name(services.settings), name=COMPLETION, data=data,
        owner=owner_of(caller),
    )
    return {"jobId": record.job_id, "status": "queued"}


@router.get("/ai/jobs/{job_id}")
async def get_ai_job(job_id: str, services: ServicesDep, caller: Caller) -> dict[str, Any]:
    """State (waiting, active, completed, failed), progress 0-100, result, failedReason."""
    found = await find_job(services, caller, services.settings.ai_tasks_queue_name, job_id)
    live, record = found.live, found.record
    progress = live.progress if live else (record.progress if record else 0)
    if isinstance(progress, dict):
        progress = progress.get("percent", 0)
    return {
        "id": job_id,
        "state": states.of_state(found.state).seed004,
        "progress": progress or 0,
        "result": live.result if live else (record.result if record else None),
        "failedReason": live.failed_reason if live else (record.error if record else None),
        "attempts": live.attempts_made if live else (record.attempts_made if record else 0),
        **({"approval": pending_call(record.progress)}
           if record is not None and record.status == AWAITING else {}),
    }


@router.delete("/ai/jobs/{job_id}", responses=error_responses(409))
async def cancel_ai_job(job_id: str, services: ServicesDep, caller: Caller) -> dict[str, Any]:
    queue = services.settings.ai_tasks_queue_name
    found = await find_job(services, caller, queue, job_id)
    await cancel_job(services, queue, job_id, found)
    return {"message": "Job cancelled"}
