"""The maintenance duties every process kind runs, each under its own Redis lease.

To add a duty (schedules and cleanup come next), add one line to the list in `duties`:
`Duty("<name>", <interval in seconds>, <async function doing one pass>)`. The runner
(`maintenance.runner`) makes sure one process at a time does it.
"""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.engine.queue import JobQueue
from agentqueue.maintenance.repair import RepairService
from agentqueue.maintenance.runner import Duty, MaintenanceRunner
from agentqueue.records.store import Records


def duties(
    settings: Settings, records: Records, queues: dict[str, JobQueue],
    open_queue: Callable[[str], JobQueue],
) -> list[Duty]:
    """`queues` are those this process knows; `open_queue` opens any other one by name."""
    repair = RepairService(records, queues, settle_s=settings.repair_settle_s,
                           lease_s=settings.submit_lease_s, open_queue=open_queue)
    return [
        Duty("repair", settings.repair_interval_s, repair.run_pass),
        # Schedules and cleanup: one Duty each, here.
    ]


def maintenance_runner(
    settings: Settings, client: redis.Redis, records: Records, queues: dict[str, JobQueue],
    open_queue: Callable[[str], JobQueue],
) -> MaintenanceRunner:
    return MaintenanceRunner(client, duties(settings, records, queues, open_queue),
                             prefix=settings.queue_prefix, lease_s=settings.maintenance_lease_s)
