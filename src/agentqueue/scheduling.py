"""Schedules from Python: a job type run by cron (in a time zone) or every N milliseconds.

    weekly = await app.schedule("report", {"week": "current"}, cron="0 9 * * 1",
                                tz="America/New_York", schedule_id="monday-report")
    weekly.next_run                       # a timezone-aware datetime
    await app.pause_schedule("monday-report")
    for run in await app.schedule_runs("monday-report"):   # Job handles, newest first
        print(run.id, await run.status())

The seeds' names work too: seed 002's `queue.add_scheduled_task(task_id, "0 9 * * 1", ...)`,
seed 004's `enqueue(name, data, repeat={"cron": ..., "tz": ...})` or `repeat={"every": ms}`,
`queue.get_repeatable_jobs()` and `queue.remove_repeatable_by_key(key)`.

Schedules are the bullmq package's job schedulers (`engine.schedules`), so Node BullMQ and its
dashboards see them; a run is a job like any other, with its own record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from agentqueue.core.schedules import (
    InvalidSchedule,
    ScheduleNotFound,
    ScheduleService,
    make_repeat,
    repeat_id,
    run_job_options,
)
from agentqueue.engine.schedules import DEFAULT_GRACE_MS, ScheduleView
from agentqueue.options import EnqueueOptions

if TYPE_CHECKING:
    from agentqueue.app import App
    from agentqueue.handle import Job

__all__ = ["InvalidSchedule", "Schedule", "ScheduleNotFound", "schedule_of"]

CatchUp = Literal["once", "skip"]
# Enqueue options a schedule's runs may have (not delays, ids or deduplication: per run).
RUN_OPTIONS = frozenset({"priority", "bullmq_priority", "attempts", "backoff", "backoff_ms",
                         "timeout", "keep_completed", "keep_failed", "owner"})


def _dt(at_ms: int | None) -> datetime | None:
    return None if at_ms is None else datetime.fromtimestamp(at_ms / 1000, UTC)


@dataclass(frozen=True)
class Schedule:
    """A schedule as it stands: what it runs, when, for whom, and its next run."""

    id: str
    queue: str
    type: str  # the job type each run is
    data: Any
    cron: str | None
    every_ms: int | None
    tz: str | None
    start: datetime | None
    end: datetime | None
    limit: int | None
    user_id: str
    org_id: str | None
    paused: bool
    catch_up: CatchUp
    grace_ms: int
    next_run: datetime | None  # None: paused, or no run left
    iterations: int  # runs queued so far
    view: ScheduleView

    def next_runs(self, count: int = 5) -> list[datetime]:
        """The next `count` runs, from `next_run` (limit and end date respected)."""
        return [_dt(at) for at in self.view.next_runs_ms(count)]  # type: ignore[misc]

    def repeatable(self) -> dict[str, Any]:
        """This schedule as BullMQ's `getRepeatableJobs` lists it (seed 004)."""
        repeat = self.view.repeat
        return {"key": self.id, "name": self.type, "id": self.id, "endDate": repeat.end_ms,
                "tz": repeat.tz, "pattern": repeat.pattern, "every": repeat.every_ms,
                "next": self.view.next_ms}


def schedule_of(view: ScheduleView) -> Schedule:
    repeat = view.repeat
    return Schedule(
        id=view.id, queue=view.queue, type=view.name, data=view.data, cron=repeat.pattern,
        every_ms=repeat.every_ms, tz=repeat.tz, start=_dt(repeat.start_ms),
        end=_dt(repeat.end_ms), limit=repeat.limit, user_id=view.owner.user_id,
        org_id=view.owner.org_id, paused=view.paused, catch_up=view.catch_up,
        grace_ms=view.grace_ms, next_run=_dt(view.next_ms), iterations=view.iterations,
        view=view)


class Scheduling:
    """What `App`'s schedule methods do (one per App)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def service(self) -> ScheduleService:
        backend = await self.app._backend()
        settings = self.app.settings

        def queue_names() -> list[str]:
            from agentqueue.services import queue_names as builtin_queues

            return list(dict.fromkeys([*builtin_queues(settings, self.app.types()),
                                       *backend.queues]))

        return ScheduleService(backend.queue, queue_names, backend.records)

    async def create(
        self, name: str, data: BaseModel | dict[str, Any], *, cron: str | None,
        every_ms: int | None, tz: str | None, start: datetime | int | None,
        end: datetime | int | None, limit: int | None, schedule_id: str | None,
        catch_up: CatchUp, grace_ms: int, paused: bool, options: EnqueueOptions,
    ) -> Schedule:
        unknown = set(options) - RUN_OPTIONS
        if unknown:
            raise TypeError(f"option(s) {', '.join(sorted(unknown))} cannot be given to a "
                            "schedule (they are per job); allowed: "
                            f"{', '.join(sorted(RUN_OPTIONS))}")
        repeat = make_repeat(cron=cron, every_ms=every_ms, tz=tz, start=start, end=end,
                             limit=limit)
        planned = self.app._plan(name, data, options)
        service = await self.service()
        jobs = (await self.app._backend()).queue(planned.queue)
        opts = run_job_options(jobs, priority=planned.priority, attempts=planned.attempts,
                               backoff=planned.backoff, options=planned.options)
        view = await service.create(
            queue=planned.queue, name=planned.name, data=planned.data, opts=opts, repeat=repeat,
            owner=planned.owner, schedule_id=schedule_id or repeat_id(planned.name, repeat),
            catch_up=catch_up, grace_ms=grace_ms, paused=paused)
        return schedule_of(view)

    async def from_repeat(self, name: str, data: BaseModel | dict[str, Any],
                          repeat: dict[str, Any], options: EnqueueOptions) -> Job:
        """Seed 004's `queue.add(name, data, {repeat})`: a schedule, and a handle on its
        first run."""
        from agentqueue.handle import Job

        if not isinstance(repeat, dict):
            raise InvalidSchedule("repeat: {cron|pattern, tz, every, limit, startDate, "
                                  "endDate, key}")
        allowed = {"cron", "pattern", "tz", "every", "limit", "startDate", "endDate", "key"}
        unknown = set(repeat) - allowed
        if unknown:
            raise InvalidSchedule(f"repeat: unknown option(s) {', '.join(sorted(unknown))}; "
                                  f"known: {', '.join(sorted(allowed))}")
        if "cron" in repeat and "pattern" in repeat:
            raise InvalidSchedule("repeat: give cron or pattern (the same thing), not both")
        schedule = await self.create(
            name, data, cron=repeat.get("cron", repeat.get("pattern")),
            every_ms=repeat.get("every"), tz=repeat.get("tz"), start=repeat.get("startDate"),
            end=repeat.get("endDate"), limit=repeat.get("limit"), schedule_id=repeat.get("key"),
            catch_up="once", grace_ms=DEFAULT_GRACE_MS, paused=False, options=options)
        run = schedule.view.next_ms
        return Job(self.app, schedule.queue, f"repeat:{schedule.id}:{run}")

    async def runs(self, schedule_id: str, limit: int) -> list[Job]:
        from agentqueue.handle import Job

        records, _ = await (await self.service()).runs(schedule_id, limit=limit)
        return [Job(self.app, record.queue, record.job_id) for record in records]
