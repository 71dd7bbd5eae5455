"""A job's durable steps (`engine.steps`) as its APIs show them: what each finished step of its
runs returned, in order."""

from __future__ import annotations

from typing import Any

from agentqueue.core.lookup import JobStores
from agentqueue.engine.steps import read_steps


async def steps_of(stores: JobStores, queue: str, job_id: str) -> list[dict[str, Any]]:
    """The finished steps of a job the caller was found to see (`lookup.find_job`)."""
    jobs = stores.queues[queue]
    return await read_steps(jobs.client, jobs.prefix, queue, job_id)
