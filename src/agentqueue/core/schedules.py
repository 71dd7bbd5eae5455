"""Schedules for every API: check a schedule, keep it on its job type's queue, find it for a
viewer (owned like jobs: someone else's schedule is simply not found), list its runs.

A schedule's runs are jobs of its type, each with its own record (made when a worker takes the
run, owned as the schedule), under the job id `repeat:<schedule id>:<epoch ms of its time>`:
that id is the link from a run to its schedule, in Redis as in the records.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from agentqueue.core import priority as priorities
from agentqueue.engine.cron import InvalidSchedule, check_cron, zone
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.schedules import (
    DEFAULT_GRACE_MS,
    RUN_ID_PREFIX,
    CatchUp,
    Repeat,
    ScheduleOwner,
    ScheduleStore,
    ScheduleView,
)
from agentqueue.records.store import Records
from agentqueue.records.views import JobOwner, JobRecordView

__all__ = ["InvalidSchedule", "ScheduleNotFound", "ScheduleService", "ScheduleTaken",
           "make_repeat", "repeat_id"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MIN_EVERY_MS = 100  # a shorter interval is a busy loop, not a schedule


class ScheduleNotFound(LookupError):
    """No such schedule, or not one the viewer may see: the two are told apart to nobody."""

    def __init__(self, schedule_id: str) -> None:
        self.message = f"Schedule {schedule_id} not found"
        super().__init__(self.message)
        self.schedule_id = schedule_id


class ScheduleTaken(Exception):
    """A schedule id someone else's schedule holds."""


class Viewer(Protocol):
    @property
    def is_admin(self) -> bool: ...

    def can_see(self, owner_user_id: str, owner_org_id: str | None) -> bool: ...


def check_id(schedule_id: str) -> str:
    if not isinstance(schedule_id, str) or not _ID.fullmatch(schedule_id):
        raise InvalidSchedule(f"id: {schedule_id!r} is not a schedule id (1-128 letters, "
                              "digits, '_', '.', '-'; starting with a letter or digit)")
    return schedule_id


def _when(value: datetime | int | str | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):  # ISO 8601, as seed 004's `startDate`/`endDate` may be
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidSchedule(f"{what}: {value!r} is not an ISO 8601 date-time") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidSchedule(f"{what}: a timezone-aware datetime is required")
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSchedule(f"{what}: epoch milliseconds or a timezone-aware datetime")
    return value


def make_repeat(*, cron: str | None = None, every_ms: int | None = None, tz: str | None = None,
                start: datetime | int | str | None = None,
                end: datetime | int | str | None = None,
                limit: int | None = None) -> Repeat:
    """A checked `Repeat` (`InvalidSchedule` saying what is wrong otherwise)."""
    if (cron is None) == (every_ms is None):
        raise InvalidSchedule("give either cron (a cron expression) or every (milliseconds)")
    if cron is not None:
        check_cron(cron, tz)
    else:
        if isinstance(every_ms, bool) or not isinstance(every_ms, int) or (
                every_ms < MIN_EVERY_MS):
            raise InvalidSchedule(f"every: a whole number of milliseconds, at least "
                                  f"{MIN_EVERY_MS}, not {every_ms!r}")
        if tz is not None:
            zone(tz)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise InvalidSchedule(f"limit: a whole number of runs, at least 1, not {limit!r}")
    start_ms, end_ms = _when(start, "start"), _when(end, "end")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise InvalidSchedule("end: must be after start")
    return Repeat(pattern=cron.strip() if cron else None, every_ms=every_ms, tz=tz or None,
                  start_ms=start_ms, end_ms=end_ms, limit=limit)


def repeat_id(name: str, repeat: Repeat) -> str:
    """The id of seed 004's `queue.add(name, data, {repeat})`: the same job name and repeat
    name the same schedule (adding it again replaces it, as BullMQ keeps one)."""
    digest = hashlib.sha1(repr((name, repeat.pattern, repeat.every_ms, repeat.tz)).encode())
    return check_id(f"{name}-{digest.hexdigest()[:16]}"[:128])


class ScheduleService:
    """Schedules over the queues `queue_of` opens, on the queues `queue_names` lists."""

    def __init__(self, queue_of: Callable[[str], JobQueue], queue_names: Callable[[], list[str]],
                 records: Records) -> None:
        self._queue_of = queue_of
        self._queue_names = queue_names
        self.records = records

    def store(self, queue: str) -> ScheduleStore:
        jobs = self._queue_of(queue)
        return ScheduleStore(jobs.bullmq, jobs.client, prefix=jobs.prefix, name=queue)

    async def create(
        self, *, queue: str, name: str, data: Any, opts: dict[str, Any], repeat: Repeat,
        owner: JobOwner, schedule_id: str, catch_up: CatchUp = "once",
        grace_ms: int = DEFAULT_GRACE_MS, paused: bool = False,
        extra: dict[str, Any] | None = None, viewer: Viewer | None = None,
    ) -> ScheduleView:
        """Create schedule `schedule_id`, or replace it if `viewer` may (its owner, an admin;
        the Python API always may); `ScheduleTaken` if someone else's holds the id."""
        check_id(schedule_id)
        if catch_up not in ("once", "skip"):
            raise InvalidSchedule(f"catch_up: 'once' or 'skip', not {catch_up!r}")
        if isinstance(grace_ms, bool) or not isinstance(grace_ms, int) or grace_ms < 0:
            raise InvalidSchedule("grace_ms: a whole number of milliseconds")
        existing = await self._find(schedule_id)
        if existing is not None and viewer is not None and not _sees(viewer, existing):
            raise ScheduleTaken(schedule_id)
        if existing is not None and existing.queue != queue:
            await self.store(existing.queue).remove(schedule_id)
        view = ScheduleView(
            id=schedule_id, queue=queue, name=name, data=data, opts=opts, repeat=repeat,
            owner=ScheduleOwner(owner.user_id, owner.org_id), paused=paused, catch_up=catch_up,
            grace_ms=grace_ms, created_at_ms=existing.created_at_ms if existing else None,
            extra=extra or {})
        return await self.store(queue).upsert(view)

    async def _find(self, schedule_id: str) -> ScheduleView | None:
        for queue in self._queue_names():
            found = await self.store(queue).get(schedule_id)
            if found is not None:
                return found
        return None

    async def get(self, schedule_id: str, viewer: Viewer | None = None) -> ScheduleView:
        found = await self._find(schedule_id) if _ID.fullmatch(schedule_id or "") else None
        if found is None or (viewer is not None and not _sees(viewer, found)):
            raise ScheduleNotFound(schedule_id)
        return found

    async def list(self, viewer: Viewer | None = None,
                   queue: str | None = None) -> builtins.list[ScheduleView]:
        views: list[ScheduleView] = []
        for name in [queue] if queue else self._queue_names():
            views.extend(v for v in await self.store(name).list()
                         if viewer is None or _sees(viewer, v))
        return sorted(views, key=lambda v: (v.next_ms is None, v.next_ms or 0, v.id))

    async def update(self, schedule_id: str, viewer: Viewer | None = None,
                     **changes: Any) -> ScheduleView:
        """Change fields of a schedule (those of `ScheduleView`: data, opts, repeat, paused,
        catch_up, grace_ms, extra); its next run is computed again from now."""
        current = await self.get(schedule_id, viewer)
        return await self.store(current.queue).upsert(replace(current, **changes))

    async def pause(self, schedule_id: str, viewer: Viewer | None = None) -> ScheduleView:
        """No run is queued until `resume` (the one queued next is taken back)."""
        return await self.update(schedule_id, viewer, paused=True)

    async def resume(self, schedule_id: str, viewer: Viewer | None = None) -> ScheduleView:
        """Runs again from its next time after now (what fell due while paused is skipped)."""
        return await self.update(schedule_id, viewer, paused=False)

    async def remove(self, schedule_id: str, viewer: Viewer | None = None) -> bool:
        current = await self.get(schedule_id, viewer)
        return await self.store(current.queue).remove(schedule_id)

    async def runs(self, schedule_id: str, viewer: Viewer | None = None, *, limit: int = 20,
                   offset: int = 0) -> tuple[builtins.list[JobRecordView], int]:
        """The records of the schedule's runs so far, newest first (a run gets its record when
        a worker takes it), and how many there are."""
        current = await self.get(schedule_id, viewer)
        return await self.records.list_jobs(
            queues=[current.queue], job_id_prefix=f"{RUN_ID_PREFIX}{schedule_id}:",
            limit=limit, offset=offset)


def _sees(viewer: Viewer, view: ScheduleView) -> bool:
    return viewer.is_admin or (bool(view.owner.user_id)
                               and viewer.can_see(view.owner.user_id, view.owner.org_id))


def run_job_options(jobs: JobQueue, *, priority: int | None, attempts: int | None,
                    backoff: dict[str, Any] | None,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The BullMQ options each run of a schedule is queued with: as `JobSubmitter.accept`
    queues a job (the queue's defaults, then the type's and the caller's)."""
    opts: dict[str, Any] = {**jobs.defaults.job_options(), **(options or {}),
                            "priority": priorities.from_bullmq(priority)}
    if attempts:
        opts["attempts"] = attempts
    if backoff:
        opts["backoff"] = backoff
    return opts
