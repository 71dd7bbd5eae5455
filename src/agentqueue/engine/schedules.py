"""Schedules of one queue, kept as the bullmq package's job schedulers (Node BullMQ's
`upsertJobScheduler`), so Node workers and dashboards see the same schedules.

BullMQ keeps, per schedule, a hash `<prefix>:<queue>:repeat:<id>` (pattern or every, tz, limit,
start and end dates, the job template, the iteration count) and its next run in the sorted set
`<prefix>:<queue>:repeat`, and exactly one job for the next run, delayed until then, under the id
`repeat:<id>:<epoch ms of the run>`. Whoever takes that job (any worker, ours or Node's) queues
the one after it; the ids are deterministic and the script only advances from the current run,
so however many workers there are, each run is queued once and taken once.

What BullMQ does not keep, agentqueue keeps beside it, in one hash per queue
(`agentqueue:<prefix>:<queue>:schedules`, id -> JSON): the owner, whether the schedule is
paused, what to do with a run missed while no worker was up (`catch_up`), and the whole
definition, so that a paused schedule (removed from BullMQ's set: it has no paused state of its
own) can be put back. A schedule made by a Node producer has no such entry: it belongs to
nobody (admins see it) and runs with catch-up "once".

The template's job options carry `agentqueue: {owner, catchUp, graceMs}`, so each run's record
(made when a worker takes the run) names the schedule's owner.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import redis.asyncio as redis
from bullmq import Queue
from bullmq.job_scheduler import JobScheduler

from agentqueue.engine.context import JobContext
from agentqueue.engine.cron import next_runs_ms, repeat_strategy
from agentqueue.engine.middleware import CallNext, Middleware

CatchUp = Literal["once", "skip"]
# Template option naming what agentqueue adds to a schedule's runs.
RUN_OPTION = "agentqueue"
# With catch_up "skip": a run starting later than this after its time is skipped.
DEFAULT_GRACE_MS = 60_000
RUN_ID_PREFIX = "repeat:"


@dataclass(frozen=True)
class Repeat:
    """When a schedule runs: a cron `pattern` (in `tz`) or `every` milliseconds; from
    `start_ms`, until `end_ms`, at most `limit` times."""

    pattern: str | None = None
    every_ms: int | None = None
    tz: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    limit: int | None = None

    def bullmq(self) -> dict[str, Any]:
        opts = {"pattern": self.pattern, "every": self.every_ms, "tz": self.tz,
                "startDate": self.start_ms, "endDate": self.end_ms, "limit": self.limit}
        return {k: v for k, v in opts.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "every": self.every_ms, "tz": self.tz,
                "startDate": self.start_ms, "endDate": self.end_ms, "limit": self.limit}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Repeat:
        def number(key: str) -> int | None:
            value = raw.get(key)
            return int(value) if value is not None else None

        return cls(pattern=raw.get("pattern") or None, every_ms=number("every"),
                   tz=raw.get("tz") or None, start_ms=number("startDate"),
                   end_ms=number("endDate"), limit=number("limit"))


@dataclass(frozen=True)
class ScheduleOwner:
    user_id: str = ""
    org_id: str | None = None


@dataclass(frozen=True)
class ScheduleView:
    """One schedule as stored: its job (name, data, options), when it runs, its owner."""

    id: str
    queue: str
    name: str  # the job type (BullMQ job name) each run has
    data: Any
    opts: dict[str, Any]
    repeat: Repeat
    owner: ScheduleOwner
    paused: bool = False
    catch_up: CatchUp = "once"
    grace_ms: int = DEFAULT_GRACE_MS
    next_ms: int | None = None  # None: paused, or no run left (limit or end date reached)
    iterations: int = 0  # runs queued so far, the next one included (BullMQ's count)
    created_at_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what the caller kept with it

    def next_runs_ms(self, count: int) -> list[int]:
        """The next `count` runs from the next one (the limit and end date respected)."""
        if self.next_ms is None:
            return []
        repeat = self.repeat
        left = count if repeat.limit is None else min(count, repeat.limit - self.iterations + 1)
        if left <= 0:
            return []
        runs = [self.next_ms]
        if repeat.pattern:
            runs += next_runs_ms(repeat.pattern, repeat.tz, self.next_ms, left - 1)
        elif repeat.every_ms:
            runs += [self.next_ms + repeat.every_ms * i for i in range(1, left)]
        if repeat.end_ms is not None:
            runs = [run for run in runs if run <= repeat.end_ms]
        return runs[:left]


def run_id(schedule_id: str, at_ms: int) -> str:
    return f"{RUN_ID_PREFIX}{schedule_id}:{at_ms}"


def parse_run_id(job_id: str) -> tuple[str, int] | None:
    """(schedule id, epoch ms of the run) of a run's job id `repeat:<id>:<ms>`."""
    if not job_id.startswith(RUN_ID_PREFIX):
        return None
    schedule_id, sep, at = job_id[len(RUN_ID_PREFIX):].rpartition(":")
    if not sep or not schedule_id or not at.isdigit():
        return None
    return schedule_id, int(at)


def scheduler(queue: Any) -> JobScheduler:
    """The package's JobScheduler on `queue` (a bullmq Queue, or anything with its `backend`),
    with agentqueue's cron rules (see `engine.cron`)."""
    return JobScheduler(queue, repeat_strategy=repeat_strategy)


class ScheduleStore:
    """The schedules of one queue (see the module's docstring)."""

    def __init__(self, queue: Queue, client: redis.Redis, *, prefix: str, name: str) -> None:
        self._queue = queue
        self._client = client
        self._scheduler = scheduler(queue)
        self.name = name
        self._meta = f"agentqueue:{prefix}:{name}:schedules"

    async def upsert(self, view: ScheduleView) -> ScheduleView:
        """Create or replace schedule `view.id` (its next run computed from now); paused, it
        is only kept, not scheduled."""
        now = int(time.time() * 1000)
        meta = {
            "name": view.name, "data": view.data, "opts": view.opts,
            "repeat": view.repeat.to_json(), "owner": [view.owner.user_id, view.owner.org_id],
            "paused": view.paused, "catchUp": view.catch_up, "graceMs": view.grace_ms,
            "createdAt": view.created_at_ms or now, "extra": view.extra,
        }
        await self._client.hset(self._meta, view.id, json.dumps(meta))
        if view.paused:
            await self._unschedule(view.id)
        else:
            await self._scheduler.upsertJobScheduler(
                view.id, view.repeat.bullmq(), view.name, view.data, self._run_opts(view))
        found = await self.get(view.id)
        assert found is not None
        return found

    async def _unschedule(self, schedule_id: str) -> int:
        """Remove the BullMQ scheduler and its next run, also one already due and waiting
        (the package's script takes back a delayed one only); one a worker holds finishes.
        0 if there was a scheduler, 1 if not (the package's answer)."""
        due = await self._client.zscore(self._queue.keys["repeat"], schedule_id)
        gone = int(await self._scheduler.removeJobScheduler(schedule_id))
        if due is not None:
            run = run_id(schedule_id, int(due))
            if await self._queue.getJobState(run) in ("waiting", "prioritized", "paused"):
                await self._queue.backend.remove(run, True)
        return gone

    def _run_opts(self, view: ScheduleView) -> dict[str, Any]:
        owner = {"userId": view.owner.user_id, "orgId": view.owner.org_id}
        return {**view.opts, RUN_OPTION: {"owner": owner, "catchUp": view.catch_up,
                                          "graceMs": view.grace_ms}}

    async def get(self, schedule_id: str) -> ScheduleView | None:
        raw = cast(str | None, await self._client.hget(self._meta, schedule_id))
        # The package's `getScheduler` fails to unpack the script's empty reply for an id
        # that has no scheduler: ask whether there is one first.
        live = None
        if await self._client.zscore(self._queue.keys["repeat"], schedule_id) is not None:
            live = await self._scheduler.getScheduler(schedule_id)
        return self._view(schedule_id, raw, live)

    async def list(self) -> list[ScheduleView]:
        metas = cast(dict[str, str], await self._client.hgetall(self._meta))
        lives = {str(s["key"]): s for s in await self._scheduler.getJobSchedulers(0, -1, True)}
        views = []
        for schedule_id in dict.fromkeys([*lives, *sorted(metas)]):
            view = self._view(schedule_id, metas.get(schedule_id), lives.get(schedule_id))
            if view is not None:
                views.append(view)
        return views

    async def remove(self, schedule_id: str) -> bool:
        """Delete the schedule and its next run (runs already taken finish)."""
        gone = await self._unschedule(schedule_id)
        dropped = await self._client.hdel(self._meta, schedule_id)
        return gone == 0 or bool(dropped)

    def _view(self, schedule_id: str, raw: str | None,
              live: dict[str, Any] | None) -> ScheduleView | None:
        if raw is None and live is None:
            return None
        meta: dict[str, Any] = json.loads(raw) if raw else {}
        template = (live or {}).get("template") or {}
        opts = dict(meta.get("opts") or {})
        if not meta:  # a Node producer's schedule: its template is all there is
            opts = {k: v for k, v in (template.get("opts") or {}).items() if k != RUN_OPTION}
        if meta.get("repeat"):
            repeat = Repeat.from_json(meta["repeat"])
        else:
            repeat = Repeat.from_json(live or {})
        user, org = (meta.get("owner") or ["", None])
        paused = bool(meta.get("paused")) and live is None
        next_ms = int(live["next"]) if live and live.get("next") is not None else None
        iterations = int((live or {}).get("iterationCount") or 0)
        if next_ms is not None and next_ms < time.time() * 1000 and (
                (repeat.limit is not None and iterations >= repeat.limit)
                or (repeat.end_ms is not None and repeat.end_ms < time.time() * 1000)):
            next_ms = None  # its last run is done: BullMQ leaves that run's time behind
        return ScheduleView(
            id=schedule_id, queue=self.name,
            name=str(meta.get("name") or (live or {}).get("name") or ""),
            data=meta["data"] if "data" in meta else template.get("data"),
            opts=opts, repeat=repeat, owner=ScheduleOwner(user, org), paused=paused,
            catch_up=meta.get("catchUp", "once"), grace_ms=_grace(meta.get("graceMs")),
            next_ms=next_ms, iterations=iterations,
            created_at_ms=meta.get("createdAt"), extra=meta.get("extra") or {},
        )


def run_options(opts: dict[str, Any]) -> dict[str, Any]:
    """What agentqueue put in a schedule run's options (owner, catch-up); {} for other jobs."""
    extra = opts.get(RUN_OPTION)
    return extra if isinstance(extra, dict) else {}


class MissedRuns(Middleware):
    """Skips a run taken too late, for schedules made with `catch_up="skip"` (and a run past
    its schedule's end date, always).

    A run whose time passed while no worker was up waits in the queue as a due job; the first
    worker back takes it. With catch-up "once" (the default, BullMQ's and Celery beat's
    behaviour) it runs then, once, however many of its ticks were missed (the next run is
    computed from now, so missed ticks are not queued one by one). With "skip" a run starting
    more than its grace (60 s by default) after its time completes at once without running,
    its result saying so; the next run is queued as usual.
    """

    async def run(self, ctx: JobContext, call_next: CallNext) -> Any:
        parsed = parse_run_id(ctx.id) if ctx.job.repeatJobKey else None
        if parsed is None:
            return await call_next()
        end = (ctx.opts.get("repeat") or {}).get("endDate")
        if isinstance(end, int | float) and parsed[1] > end:
            # The package checks the end date against the clock when it queues a run, so an
            # every-N schedule gets one run past its end: that one does not run.
            reason = f"skipped: run of schedule {parsed[0]!r} falls after its end date"
            await ctx.log(reason)
            return {"skipped": True, "schedule": parsed[0], "reason": reason}
        extra = run_options(ctx.opts)
        if extra.get("catchUp") != "skip":
            return await call_next()
        late_ms = int(time.time() * 1000) - parsed[1]
        grace_ms = _grace(extra.get("graceMs"))
        if late_ms <= grace_ms:
            return await call_next()
        reason = (f"skipped: run of schedule {parsed[0]!r} taken {late_ms / 1000:.0f}s after its "
                  f"time (catch_up=skip, grace {grace_ms / 1000:.0f}s)")
        await ctx.log(reason)
        return {"skipped": True, "schedule": parsed[0], "reason": reason}


def _grace(value: Any) -> int:
    return DEFAULT_GRACE_MS if value is None else int(value)  # 0 is a grace too
