"""The maintenance duties every process kind runs, each under its own Redis lease.

To add a duty (schedules and cleanup come next), add one line to the list in `duties`:
`Duty("<name>", <interval in seconds>, <async function doing one pass>)`. The runner
(`maintenance.runner`) makes sure one process at a time does it.
"""

from __future__ import annotations

import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.queue import JobQueue
from agentqueue.maintenance.repair import RepairService
from agentqueue.maintenance.runner import Duty, MaintenanceRunner
from agentqueue.records.store import Records


def duties(settings: Settings, records: Records, queues: dict[str, JobQueue]) -> list[Duty]:
    repair = RepairService(records, queues, settle_s=settings.repair_settle_s,
                           lease_s=settings.submit_lease_s)
    return [
        Duty("repair", settings.repair_interval_s, repair.run_pass),
    ]


def maintenance_runner(
    settings: Settings, client: redis.Redis, records: Records, queues: dict[str, JobQueue]
) -> MaintenanceRunner:
    return MaintenanceRunner(client, duties(settings, records, queues),
                             prefix=settings.queue_prefix, lease_s=settings.maintenance_lease_s)
