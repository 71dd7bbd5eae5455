"""A handle on one queue: counts, lists by state, pause and resume, clean, drain, remove, and
the queue's events (seed 002's `getQueueStats`/`pauseQueue`/`removeJob`…, seed 004's
`getJobCounts`/`getWaiting`/`clean`/`empty` and its global events).

    jobs = app.queue("jobs")
    counts = await jobs.counts()            # QueueCounts(waiting=3, active=1, …)
    for view in await jobs.failed(0, 9):    # the ten newest failed jobs
        print(view.id, view.failed_reason)
    async for event in jobs.events():       # completed, failed, progress, stalled, drained…
        ...

Records keep a job's history whatever Redis forgets: `clean` of finished jobs leaves their
records as they are, while a job taken out of the queue before it ran (`drain`, `remove`,
`clean` of waiting or delayed jobs) is cancelled, its record saying so, exactly as
`Job.cancel` does (so the repair service, which queues again a `queued` record whose job is
missing, does not bring it back).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from agentqueue.engine.jobs import JobView, is_job_id
from agentqueue.engine.queue import CANCELLED_REASON, JobQueue
from agentqueue.engine.stream import event_json
from agentqueue.errors import JobNotFound
from agentqueue.handle import Job

if TYPE_CHECKING:
    from agentqueue.app import App
    from agentqueue.backend import Backend
    from agentqueue.core.dead_letters import DeadLetter
    from agentqueue.records.store import Records
    from agentqueue.scheduling import Schedule

T = TypeVar("T")

State = Literal["waiting", "active", "completed", "failed", "delayed", "paused", "prioritized"]
CleanState = Literal["completed", "failed", "waiting", "wait", "delayed", "paused",
                     "prioritized", "active"]
PENDING: frozenset[str] = frozenset({"waiting", "wait", "delayed", "paused", "prioritized"})
REMOVED_BY_CLEAN = "removed from the queue by clean while no worker held it"


@dataclass(frozen=True)
class QueueCounts:
    """Jobs in each state. `waiting` counts every job waiting to run, with or without a
    priority (every seed calls them waiting); `prioritized` says how many of those have one
    (BullMQ keeps them apart; all jobs agentqueue queues have one). On a paused queue the
    waiting jobs are counted as `paused`."""

    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    paused: int
    prioritized: int

    @property
    def total(self) -> int:
        return (self.waiting + self.active + self.completed + self.failed + self.delayed
                + self.paused)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class QueueEvent:
    """One entry of BullMQ's events stream of a queue (what Node `QueueEvents` hears).

    `event` is BullMQ's name: added, waiting, active, progress, completed, failed, delayed,
    stalled, retries-exhausted, removed, drained, cleaned, paused, resumed…; `fields` the
    entry as written (strings)."""

    id: str  # the stream entry's id
    event: str
    job_id: str | None
    fields: dict[str, str]

    @property
    def returnvalue(self) -> Any:
        """A `completed` event's result."""
        return event_json(self.fields.get("returnvalue"))

    result = returnvalue

    @property
    def failed_reason(self) -> str | None:
        """A `failed` event's reason."""
        return self.fields.get("failedReason")

    @property
    def progress(self) -> Any:
        """A `progress` event's value (a percentage, or {"current", "total", "percent"…})."""
        return event_json(self.fields.get("data"))

    @property
    def prev(self) -> str | None:
        """The state the job left (on waiting, active, completed, failed, removed)."""
        return self.fields.get("prev")




class Queue:
    """One queue of the App's Redis: look at it, pause it, clean it, follow its events."""

    def __init__(self, app: App, name: str) -> None:
        self.app = app
        self.name = name

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    async def _open(self) -> tuple[Backend, JobQueue]:
        backend = await self.app._backend()
        return backend, backend.queue(self.name)

    # -- looking ---------------------------------------------------------------------------------

    async def counts(self) -> QueueCounts:
        """How many jobs are in each state (seed 002's `getQueueStats`, seed 004's
        `getJobCounts`)."""
        _, jobs = await self._open()
        counts = await jobs.counts()
        prioritized = (await jobs.count_in("prioritized"))["prioritized"]
        return QueueCounts(
            waiting=counts["waiting"], active=counts["active"], completed=counts["completed"],
            failed=counts["failed"], delayed=counts["delayed"], paused=counts["paused"],
            prioritized=prioritized)

    async def jobs(self, state: State, start: int = 0, end: int = -1) -> list[JobView]:
        """Jobs in `state`, `start` to `end` inclusive (BullMQ's paging: `end=-1` to the last).

        Waiting and delayed jobs come in the order they will run (waiting: plain ones first,
        then by priority, as BullMQ serves them), active ones oldest first, completed and
        failed newest first. On a paused queue the waiting jobs are listed as `paused`.
        """
        _, jobs = await self._open()
        paused = await jobs.is_paused()
        if state in ("waiting", "paused"):
            if (state == "paused") != paused:
                # A running queue has nothing paused (old BullMQ's own paused list aside);
                # a paused one nothing waiting.
                return await jobs.page(["paused"], start, end) if state == "paused" else []
            return await jobs.page(["waiting", "prioritized", "paused"], start, end,
                                   shown=state)
        if state in ("active", "delayed", "prioritized"):
            return await jobs.page([state], start, end, asc=True)
        if state in ("completed", "failed"):
            return await jobs.page([state], start, end, asc=False)
        raise ValueError(f"state {state!r}: one of waiting, active, completed, failed, "
                         "delayed, paused, prioritized")

    async def waiting(self, start: int = 0, end: int = -1) -> list[JobView]:
        return await self.jobs("waiting", start, end)

    async def active(self, start: int = 0, end: int = -1) -> list[JobView]:
        return await self.jobs("active", start, end)

    async def completed(self, start: int = 0, end: int = -1) -> list[JobView]:
        return await self.jobs("completed", start, end)

    async def failed(self, start: int = 0, end: int = -1) -> list[JobView]:
        return await self.jobs("failed", start, end)

    async def delayed(self, start: int = 0, end: int = -1) -> list[JobView]:
        return await self.jobs("delayed", start, end)

    async def get(self, job_id: str) -> Job | None:
        """A handle on job `job_id` of this queue; None if neither Redis nor the records know
        it (seed 002's `getJob`)."""
        backend, jobs = await self._open()
        if not is_job_id(job_id):
            return None
        if await jobs.get(job_id) is None and await backend.records.get(self.name,
                                                                        job_id) is None:
            return None
        return Job(self.app, self.name, job_id)

    # -- pausing ---------------------------------------------------------------------------------

    async def pause(self) -> None:
        """Workers take no new job from this queue (on any process); active jobs finish."""
        await (await self._open())[1].pause()

    async def resume(self) -> None:
        await (await self._open())[1].resume()

    async def is_paused(self) -> bool:
        return await (await self._open())[1].is_paused()

    # -- removing --------------------------------------------------------------------------------

    async def clean(self, grace_s: float = 0, state: CleanState = "completed",
                    limit: int = 0) -> list[str]:
        """Remove jobs in `state` older than `grace_s` seconds (at most `limit`, 0: all) and
        return their ids (seed 004's `clean(grace, status)`, in seconds).

        Completed and failed jobs are aged by when they finished, and their records keep
        their history. Waiting, delayed or paused jobs are aged by when they were added, and
        are cancelled, their records too. Active jobs go only if no worker holds them (a
        stalled job whose worker died), aged by when they started; their records are failed.
        """
        backend, jobs = await self._open()
        return await clean_with_records(backend.records, jobs, state, grace_s, limit)

    async def drain(self, *, delayed: bool = True) -> list[str]:
        """Cancel every job waiting to run (and the delayed ones, unless `delayed=False`);
        active and finished jobs stay. Their records become `cancelled`. Returns their ids."""
        backend, jobs = await self._open()
        lists = ["waiting", "prioritized", "paused"] + (["delayed"] if delayed else [])
        return await self._cancel(backend, jobs, [view.id for view in await jobs.page(lists)])

    async def empty(self) -> list[str]:
        """Seed 004's `queue.empty()`: `drain()`, delayed jobs included."""
        return await self.drain(delayed=True)

    async def remove(self, job_id: str) -> bool:
        """Take job `job_id` out of Redis (seed 002's `removeJob`).

        A job that has not run yet is cancelled (its record too). A finished one is dropped
        from Redis and its record keeps its history. An active job is not removed (False):
        `cancel` it. `JobNotFound` if neither Redis nor the records know it.
        """
        backend, jobs = await self._open()
        view = await jobs.get(job_id)
        if view is None:
            if is_job_id(job_id) and await backend.records.get(self.name, job_id) is not None:
                return False  # Redis has dropped it already; the record stays
            raise JobNotFound(f"job {job_id} of {self.name!r} is unknown")
        if view.state == "cancelled":
            await jobs.forget_tombstone(job_id)
            return True
        if view.state in ("completed", "failed"):
            return await jobs.remove(job_id)
        if view.state == "active":
            return False
        return bool(await self._cancel(backend, jobs, [job_id]))

    async def _cancel(self, backend: Backend, jobs: JobQueue, job_ids: list[str]) -> list[str]:
        return await cancel_pending(backend.records, jobs, job_ids)

    # -- dead letters (seed 002) -------------------------------------------------------------

    async def dead_letters(self, *, type: str | None = None,  # noqa: A002 - the API's word
                           limit: int = 20, offset: int = 0) -> list[DeadLetter]:
        """This queue's jobs that failed for good (`App.dead_letters` for one queue)."""
        return await self.app.dead_letters(self.name, type=type, limit=limit, offset=offset)

    async def replay(self, job_id: str, *, data: Any = None) -> Job:
        """Run dead letter `job_id` of this queue again (`App.replay`)."""
        return await self.app.replay(self.name, job_id, data=data)

    # -- schedules (scheduling.py) ---------------------------------------------------------------

    async def add_scheduled_task(
        self, task_id: str, cron_expression: str, *, task: dict[str, Any],
        schedule_timezone: str | None = None, type: str = "agent-task",  # noqa: A002
        **options: Any,
    ) -> Schedule:
        """Seed 002's `addScheduledTask(taskId, cronExpression)`: run `task` (an agent task's
        title/description/prompt, agent_id, context) by `cron_expression` in
        `schedule_timezone` (the task's `schedule_timezone`; UTC by default), as schedule
        `task_id` (scheduling it again replaces it). `options`: as `App.schedule`'s."""
        data = {**task, "taskId": task_id}
        schedule = await self.app.schedule(type, data, cron=cron_expression,
                                           tz=schedule_timezone, schedule_id=task_id,
                                           **options)
        if schedule.queue != self.name:
            await self.app.remove_schedule(task_id)
            raise ValueError(f"job type {type!r} runs on queue {schedule.queue!r}, not "
                             f"{self.name!r}")
        return schedule

    async def get_repeatable_jobs(self) -> list[dict[str, Any]]:
        """Seed 004's `getRepeatableJobs()`: this queue's schedules as BullMQ lists them
        (`key`, `name`, `id`, `endDate`, `tz`, `pattern`, `every`, `next`)."""
        return [schedule.repeatable() for schedule in await self.app.schedules(self.name)]

    async def remove_repeatable_by_key(self, key: str) -> bool:
        """Seed 004's `removeRepeatableByKey(key)`: delete that schedule; False if none."""
        from agentqueue.scheduling import ScheduleNotFound

        try:
            schedule = await self.app.get_schedule(key)
        except ScheduleNotFound:
            return False
        if schedule.queue != self.name:
            return False
        return await self.app.remove_schedule(key)

    def add_scheduled_task_sync(self, task_id: str, cron_expression: str, *,
                                task: dict[str, Any], **kwargs: Any) -> Schedule:
        return self.app.run_sync(self.add_scheduled_task(task_id, cron_expression, task=task,
                                                         **kwargs))

    def get_repeatable_jobs_sync(self) -> list[dict[str, Any]]:
        return self.app.run_sync(self.get_repeatable_jobs())

    def remove_repeatable_by_key_sync(self, key: str) -> bool:
        return self.app.run_sync(self.remove_repeatable_by_key(key))

    # -- events ----------------------------------------------------------------------------------

    async def last_event_id(self) -> str:
        """Where the queue's events stream is now: pass it as `events(after=...)` to hear
        everything from this moment on, however late the iteration starts."""
        return await (await self._open())[1].last_event_id()

    async def events(
        self, *kinds: str, after: str | None = None
    ) -> AsyncGenerator[QueueEvent, None]:
        """The queue's events as they happen, from every worker and producer (Node's too),
        read from BullMQ's events stream with a blocking XREAD; only `kinds` if given
        (e.g. "completed", "failed"). Starts where the stream is when the iteration starts,
        or after entry id `after` (`last_event_id()`, or "0" for everything the stream still
        holds). Never ends by itself: break out of the loop."""
        _, jobs = await self._open()
        wanted = set(kinds)
        async for entry_id, fields in jobs.events(after):
            event = fields.get("event", "")
            if wanted and event not in wanted:
                continue
            yield QueueEvent(entry_id, event, fields.get("jobId"), fields)

    # -- sync twins ------------------------------------------------------------------------------

    def dead_letters_sync(self, *, type: str | None = None,  # noqa: A002
                          limit: int = 20, offset: int = 0) -> list[DeadLetter]:
        return self.app.run_sync(self.dead_letters(type=type, limit=limit, offset=offset))

    def replay_sync(self, job_id: str, *, data: Any = None) -> Job:
        return self.app.run_sync(self.replay(job_id, data=data))

    def counts_sync(self) -> QueueCounts:
        return self.app.run_sync(self.counts())

    def jobs_sync(self, state: State, start: int = 0, end: int = -1) -> list[JobView]:
        return self.app.run_sync(self.jobs(state, start, end))

    def waiting_sync(self, start: int = 0, end: int = -1) -> list[JobView]:
        return self.jobs_sync("waiting", start, end)

    def active_sync(self, start: int = 0, end: int = -1) -> list[JobView]:
        return self.jobs_sync("active", start, end)

    def completed_sync(self, start: int = 0, end: int = -1) -> list[JobView]:
        return self.jobs_sync("completed", start, end)

    def failed_sync(self, start: int = 0, end: int = -1) -> list[JobView]:
        return self.jobs_sync("failed", start, end)

    def delayed_sync(self, start: int = 0, end: int = -1) -> list[JobView]:
        return self.jobs_sync("delayed", start, end)

    def get_sync(self, job_id: str) -> Job | None:
        return self.app.run_sync(self.get(job_id))

    def pause_sync(self) -> None:
        self.app.run_sync(self.pause())

    def resume_sync(self) -> None:
        self.app.run_sync(self.resume())

    def is_paused_sync(self) -> bool:
        return self.app.run_sync(self.is_paused())

    def clean_sync(self, grace_s: float = 0, state: CleanState = "completed",
                   limit: int = 0) -> list[str]:
        return self.app.run_sync(self.clean(grace_s, state, limit))

    def drain_sync(self, *, delayed: bool = True) -> list[str]:
        return self.app.run_sync(self.drain(delayed=delayed))

    def empty_sync(self) -> list[str]:
        return self.app.run_sync(self.empty())

    def remove_sync(self, job_id: str) -> bool:
        return self.app.run_sync(self.remove(job_id))

    def last_event_id_sync(self) -> str:
        return self.app.run_sync(self.last_event_id())

    def events_sync(self, *kinds: str, after: str | None = None) -> Iterator[QueueEvent]:
        """`events` for code without an event loop: a blocking iterator."""
        return self.app.iterate_sync(self.events(*kinds, after=after))


async def clean_with_records(records: Records, jobs: JobQueue, state: CleanState,
                             grace_s: float = 0, limit: int = 0) -> list[str]:
    """`Queue.clean` for any holder of the records and the queue (the App, the API)."""
    if grace_s < 0 or limit < 0:
        raise ValueError("grace_s and limit must not be negative")
    grace_ms = int(grace_s * 1000)
    if state in PENDING:
        lists = {"delayed": ["delayed"], "prioritized": ["prioritized"]}.get(
            state, ["waiting", "prioritized", "paused"])
        cutoff = int(time.time() * 1000) - grace_ms
        old = [view.id for view in await jobs.page(lists)
               if (view.created_at_ms or 0) <= cutoff]
        return await cancel_pending(records, jobs, old[:limit] if limit else old)
    if state not in ("completed", "failed", "active"):
        raise ValueError(f"state {state!r}: one of completed, failed, waiting, delayed, "
                         "paused, prioritized, active")
    removed = await jobs.clean_in(state, grace_ms, limit)
    if state == "active":
        for job_id in removed:
            await records.mark(jobs.name, job_id, "failed", error=REMOVED_BY_CLEAN,
                               message=REMOVED_BY_CLEAN)
    return removed


async def cancel_pending(records: Records, jobs: JobQueue, job_ids: list[str]) -> list[str]:
    """Cancel jobs that have not started, as `Job.cancel` does but for many at once, and
    return those taken out of Redis.

    The order keeps everyone in step: a cancel request first (a worker taking one of them
    meanwhile drops it), then the records (`cancelled`, final: the repair service never
    queues them again), then the removal, whose `removed` events wake `Job.wait`ers, who
    then read the record. One that started meanwhile is stopped by its worker.
    """
    if not job_ids:
        return []
    await jobs.request_cancel(job_ids)
    await records.cancel_many(jobs.name, job_ids, error=CANCELLED_REASON,
                              message=CANCELLED_REASON)
    return await jobs.remove_requested(job_ids)
