"""The flow-control middleware against a real Redis, a real worker and real records: a tenant
at its cap of running jobs does not hold back another tenant's jobs, and a job over a job-type
rate limit waits in the queue (no attempt spent, its record still queued) until the limit
allows it, here lifted at run time."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.core.limits import LimitStore
from agentqueue.engine.context import JobContext
from agentqueue.engine.queue import JobQueue
from agentqueue.handlers.flow_control import FlowControl
from agentqueue.handlers.records_middleware import RecordsMiddleware
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner
from agentqueue.services import limit_counters
from tests.support.waiting import eventually
from tests.support.workers import StartWorker, mw_queue, start_worker

__all__ = ["mw_queue", "start_worker"]  # fixtures used here
ANN, BOB = JobOwner(user_id="ann", org_id="a"), JobOwner(user_id="bob", org_id="b")


def limits_for(client: redis.Redis, redis_url: str, prefix: str, **more: Any) -> LimitStore:
    settings = Settings(REDIS_URL=redis_url, QUEUE_PREFIX=prefix,  # type: ignore[call-arg]
                        LIMITS_REFRESH_SECONDS=0.05, **more)
    return LimitStore(client, settings)


def flow_control(client: redis.Redis, limits: LimitStore, records: Records) -> FlowControl:
    settings = Settings(QUEUE_PREFIX=limits.prefix)  # type: ignore[call-arg]
    # Parked jobs wait 10 s unless a finished job lets them back: these tests finish sooner.
    return FlowControl(limits, limit_counters(settings, client), records=records,
                       defer_ms=10_000)


async def recorded(records: Records, queue: JobQueue, name: str, owner: JobOwner) -> str:
    job_id = await queue.add(name, {}, priority=1000)
    await records.create_job(queue=queue.name, job_id=job_id, type=name, data={}, owner=owner,
                             max_attempts=3, status="queued")
    return job_id


async def test_a_tenant_at_its_cap_does_not_hold_back_another_tenants_jobs(
    mw_queue: JobQueue, start_worker: StartWorker, records: Records, client: redis.Redis,
    redis_url: str, prefix: str,
) -> None:
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    done: list[str] = []

    async def work(ctx: JobContext) -> str:
        record = await records.get(ctx.queue, ctx.id)
        assert record is not None
        org = str(record.owner.org_id)
        running[org] += 1
        most[org] = max(most[org], running[org])
        await asyncio.sleep(0.02)  # the work itself
        running[org] -= 1
        done.append(org)
        return org

    limits = limits_for(client, redis_url, prefix, TENANT_MAX_ACTIVE_PER_ORG=1)
    # Tenant A's 30 jobs are all queued before tenant B's 3.
    a_jobs = [await recorded(records, mw_queue, "work", ANN) for _ in range(30)]
    b_jobs = [await recorded(records, mw_queue, "work", BOB) for _ in range(3)]
    await start_worker({"work": work}, [flow_control(client, limits, records),
                                        RecordsMiddleware(records)])

    async def b_finished() -> bool:
        return done.count("b") == 3

    await eventually(b_finished, timeout=30, what="tenant B's jobs to finish")
    # In queue order, B's jobs would have waited for A's 30 (4 slots: at least 27 done).
    assert done.count("a") < 15
    assert most == {"a": 1, "b": 1}  # the cap held

    async def all_finished() -> bool:
        return len(done) == 33

    await eventually(all_finished, timeout=60, what="every job to finish")
    for job_id in a_jobs + b_jobs:
        view = await mw_queue.get(job_id)
        assert view is not None and view.state == "completed"
        assert view.attempts_made == 1  # being put back spent no attempt


async def test_a_job_over_its_types_rate_limit_waits_queued_until_the_limit_lifts(
    mw_queue: JobQueue, start_worker: StartWorker, records: Records, client: redis.Redis,
    redis_url: str, prefix: str,
) -> None:
    limits = limits_for(client, redis_url, prefix,
                        JOB_TYPE_RATE_LIMITS={"report": {"max": 2, "duration": 60_000}})
    ran: list[str] = []

    async def report(ctx: JobContext) -> None:
        ran.append(ctx.id)

    jobs = [await recorded(records, mw_queue, "report", ANN) for _ in range(3)]
    await start_worker({"report": report}, [flow_control(client, limits, records),
                                            RecordsMiddleware(records)])

    async def two_ran() -> bool:
        return len(ran) == 2

    await eventually(two_ran, what="two jobs to run")
    waiting = next(job_id for job_id in jobs if job_id not in ran)

    async def put_back() -> Any:
        view = await mw_queue.get(waiting)
        return view if view is not None and view.state == "delayed" else None

    view = await eventually(put_back, what="the third job to be put back")
    assert view.attempts_made == 0
    record = await records.get(mw_queue.name, waiting)
    assert record is not None and record.status == "queued"

    await limits.update({"jobTypes": {"report": None}})  # lifted at run time

    async def all_ran() -> bool:
        return len(ran) == 3

    await eventually(all_ran, what="the third job to run once the limit is lifted")


async def test_an_owner_limit_counts_each_tenant_on_its_own(
    mw_queue: JobQueue, start_worker: StartWorker, records: Records, client: redis.Redis,
    redis_url: str, prefix: str,
) -> None:
    limits = limits_for(client, redis_url, prefix,
                        OWNER_RATE_LIMIT={"max": 1, "duration": 60_000})
    ran: list[str] = []

    async def report(ctx: JobContext) -> None:
        ran.append(ctx.id)

    ann = [await recorded(records, mw_queue, "report", ANN) for _ in range(2)]
    bob = [await recorded(records, mw_queue, "report", BOB) for _ in range(2)]
    await start_worker({"report": report}, [flow_control(client, limits, records),
                                            RecordsMiddleware(records)])

    async def one_each_ran_one_each_waits() -> bool:
        for jobs in (ann, bob):  # taken four at once: either job of a tenant may be first
            states = sorted([(await mw_queue.get(job_id)).state  # type: ignore[union-attr]
                             for job_id in jobs])
            if states != ["completed", "delayed"]:
                return False
        return True

    await eventually(one_each_ran_one_each_waits,
                     what="one job of each tenant to run and the other to wait")
    assert len(ran) == 2
