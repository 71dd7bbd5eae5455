"""Direct mode: the operator commands on Redis and the records themselves, through the public
Python API (`agentqueue.App`, its `Queue` and `Job` handles), configured from the same settings
as the service (REDIS_URL, DATABASE_URL, QUEUE_PREFIX…).

Whoever can reach Redis and the database sees and touches every job, as an admin does over
HTTP. Listings, usage and the worker list read the App's connections (`App._backend()`): the
public handles have no call for the records' pages or the worker heartbeats, and a second set
of connections would be two of everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from agentqueue.api.jobs import job_out
from agentqueue.app import App
from agentqueue.cli.ops_client import FINISHED, Mode, OpsError, Update, progress_of, split_ref
from agentqueue.core import priority as priorities
from agentqueue.core import states
from agentqueue.errors import JobNotFound, JobNotRetryable
from agentqueue.handle import Job
from agentqueue.metrics.aggregate import WORKER_TTL_S, workers_key
from agentqueue.records.views import JobOwner
from agentqueue.services import queue_names
from agentqueue.timefmt import iso_from_datetime

if TYPE_CHECKING:
    from agentqueue.backend import Backend
    from agentqueue.queues import CleanState

# `clean --state finished` (the default): what `POST /v1/admin/queue/clean` removes.
FINISHED_STATES: tuple[CleanState, ...] = ("completed", "failed")


class DirectClient:
    mode: Mode = "direct"

    def __init__(self, app: App) -> None:
        self.app = app

    @classmethod
    def for_app(cls, app_ref: str | None) -> DirectClient:
        """The user's App (its job types and queues known too), or one of the built-in types."""
        if app_ref is None:
            from agentqueue.config import get_settings

            return cls(App(get_settings()))
        from agentqueue.app_loader import AppNotFound, load_app

        try:
            return cls(load_app(app_ref))
        except AppNotFound as exc:
            raise OpsError(str(exc)) from None

    async def close(self) -> None:
        await self.app.close()

    async def _backend(self) -> Backend:
        return await self.app._backend()

    def _known_queues(self) -> list[str]:
        return queue_names(self.app.settings, self.app.types())

    def _queue_name(self, name: str) -> str:
        known = self._known_queues()
        if name not in known:
            raise OpsError(f"unknown queue {name!r}; known: {', '.join(known)} "
                           "(a queue of your own job types: pass --app MODULE:APP)")
        return name

    # -- jobs ----------------------------------------------------------------------------------

    async def list_jobs(self, *, queue: str | None, type_: str | None, status: str | None,
                        limit: int, offset: int) -> dict[str, Any]:
        backend = await self._backend()
        records, total = await backend.records.list_jobs(
            queues=[self._queue_name(queue)] if queue else None,
            types=[type_] if type_ else None,
            statuses=states.record_statuses_named("seed001", status) if status else None,
            limit=limit, offset=offset)
        return {"jobs": [job_out(r).model_dump() for r in records], "total": total,
                "limit": limit, "offset": offset}

    async def get_job(self, ref: str) -> dict[str, Any]:
        queue, job_id = split_ref(ref)
        backend = await self._backend()
        record = await backend.records.get(queue, job_id)
        if record is None:
            raise OpsError(f"job {ref} not found")
        live = await backend.queue(queue).get(job_id)
        out = job_out(record, live.progress if live and record.status == "active" else None)
        shown = out.model_dump()
        shown["usage"] = {"inputTokens": record.input_tokens, "outputTokens": record.output_tokens,
                          "costUsd": round(record.cost_usd, 8), "provider": record.provider,
                          "model": record.model}
        shown["history"] = [
            {"status": event.status, "attempt": event.attempt, "message": event.message,
             "at": iso_from_datetime(event.at)}
            for event in await backend.records.history(queue, job_id)]
        return shown

    async def submit(self, type_: str, data: dict[str, Any], *, priority: int | None,
                     attempts: int | None, delay_ms: int, user: str | None,
                     org: str | None) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if priority is not None:  # seed 001's scale, as `POST /api/jobs` takes it
            options["bullmq_priority"] = priorities.from_seed001(priority)
        if attempts is not None:
            options["attempts"] = attempts
        if delay_ms:
            options["delay_ms"] = delay_ms
        if user is not None:
            options["owner"] = JobOwner(user_id=user, org_id=org)
        elif org is not None:
            raise OpsError("--org names the owner's organization: give --user too")
        job = await self.app.enqueue(type_, data, **options)
        return await self.get_job(f"{job.queue}:{job.id}")

    async def follow(self, ref: str, timeout: float | None) -> AsyncIterator[Update]:
        """Where the job is now, then its events as they happen, from the queue's events
        stream read after the entry that was last before its state was read (nothing falls in
        between); then the finished job."""
        queue, job_id = split_ref(ref)
        handle = self.app.queue(queue)
        since = await handle.last_event_id()
        shown = await self.get_job(ref)
        job = Job(self.app, queue, job_id)
        # Redis knows first: the record catches up a moment after the outcome.
        if await job.status() not in FINISHED:
            raw = await job.progress()
            yield _progress_update(raw)
            ran = shown["attempts"] > 0 or shown["status"] == "active"
            async with asyncio.timeout(timeout), contextlib.aclosing(
                    handle.events(after=since)) as events:
                async for event in events:
                    if event.job_id != job_id:
                        continue
                    if event.event == "progress":
                        yield _progress_update(event.progress)
                    elif event.event == "active":
                        ran = True
                    elif ((event.event == "delayed" and ran) or (
                            event.event == "waiting" and event.prev in ("active", "failed"))):
                        yield Update("retrying")  # an attempt failed; another follows
                    elif event.event in ("completed", "failed", "removed"):
                        break
        yield Update("done", job=await self._settled(ref))

    async def _settled(self, ref: str) -> dict[str, Any]:
        """The job once its record says it has finished: the record is written a moment after
        Redis has the outcome."""
        deadline = time.monotonic() + 10
        while True:
            shown = await self.get_job(ref)
            if shown["status"] in FINISHED or time.monotonic() > deadline:
                return shown
            await asyncio.sleep(0.05)

    async def cancel(self, ref: str) -> dict[str, Any]:
        queue, job_id = split_ref(ref)
        try:
            cancelled = await Job(self.app, queue, job_id).cancel()
        except JobNotFound:
            raise OpsError(f"job {ref} not found") from None
        if not cancelled:
            raise OpsError(f"job {ref} has already finished: nothing to cancel")
        return await self.get_job(ref)

    async def retry(self, ref: str) -> dict[str, Any]:
        queue, job_id = split_ref(ref)
        try:
            await Job(self.app, queue, job_id).retry()
        except JobNotFound:
            raise OpsError(f"job {ref} not found") from None
        except JobNotRetryable as exc:
            raise OpsError(f"job {ref} cannot be retried: {exc}") from None
        return await self.get_job(ref)

    async def decide(self, ref: str, decision: str, reason: str | None) -> dict[str, Any]:
        queue, job_id = split_ref(ref)
        job = Job(self.app, queue, job_id)
        try:
            done = await (job.approve(reason, by="cli") if decision == "approve"
                          else job.deny(reason, by="cli"))
        except JobNotFound:
            raise OpsError(f"job {ref} not found") from None
        if not done:
            raise OpsError(f"job {ref} is not awaiting approval")
        return await self.get_job(ref)

    # -- queues --------------------------------------------------------------------------------

    async def queues(self) -> list[dict[str, Any]]:
        shown = []
        for name in self._known_queues():
            handle = self.app.queue(name)
            counts = await handle.counts()
            # As `GET /v1/admin/queue/metrics` counts: a paused queue's jobs are waiting too.
            shown.append({
                "queue": name, "waiting": counts.waiting + counts.paused,
                "active": counts.active, "completed": counts.completed,
                "failed": counts.failed, "delayed": counts.delayed,
                "paused": await handle.is_paused(), "total": counts.total})
        return shown

    async def pause(self, queue: str) -> dict[str, Any]:
        await self.app.queue(self._queue_name(queue)).pause()
        return {"queue": queue, "paused": True}

    async def resume(self, queue: str) -> dict[str, Any]:
        await self.app.queue(self._queue_name(queue)).resume()
        return {"queue": queue, "paused": False}

    async def clean(self, queue: str, *, older_than_s: float, state: str,
                    limit: int) -> dict[str, Any]:
        handle = self.app.queue(self._queue_name(queue))
        chosen = FINISHED_STATES if state == "finished" else (cast("CleanState", state),)
        removed: list[str] = []
        for each in chosen:
            removed += await handle.clean(older_than_s, each, limit)
        return {"queue": queue, "removed": len(removed), "ids": removed}

    # -- workers and usage ---------------------------------------------------------------------

    async def workers(self) -> dict[str, Any]:
        backend = await self._backend()
        now = time.time()
        # Heartbeats of every worker process (`MetricsRecorder`): "queue|host:pid:nonce".
        beats = cast(list[tuple[str, float]], await backend.client.zrangebyscore(
            workers_key(self.app.settings.queue_prefix), now - WORKER_TTL_S, "+inf",
            withscores=True))
        counts = dict.fromkeys(self._known_queues(), 0)
        by_process: dict[str, dict[str, Any]] = {}
        for member, seen in beats:  # a pair per member, with its score
            queue, _, identity = str(member).partition("|")
            host, pid, _nonce = ([*identity.rsplit(":", 2), "", ""])[:3]
            counts[queue] = counts.get(queue, 0) + 1
            process = by_process.setdefault(identity, {
                "host": host, "pid": int(pid) if pid.isdigit() else None, "queues": [],
                "lastSeenSeconds": round(max(0.0, now - seen), 1)})
            process["queues"].append(queue)
            process["lastSeenSeconds"] = min(process["lastSeenSeconds"],
                                             round(max(0.0, now - seen), 1))
        processes = sorted(by_process.values(), key=lambda p: (p["host"], p["pid"] or 0))
        for process in processes:
            process["queues"].sort()
        return {"queues": counts, "workers": processes}

    async def usage(self, *, since: date | None, org: str | None) -> dict[str, Any]:
        from agentqueue.records.usage_report import usage_by_org

        backend = await self._backend()
        rows = await usage_by_org(backend.records, since=since, org_id=org)
        return {"usage": rows, "totals": {
            "jobs": sum(r["jobs"] for r in rows),
            "inputTokens": sum(r["inputTokens"] for r in rows),
            "outputTokens": sum(r["outputTokens"] for r in rows),
            "costUsd": round(sum(r["costUsd"] for r in rows), 8)}}


def _progress_update(raw: Any) -> Update:
    """A progress value as `wait` shows it: streamed text (`{"percent", "text", "streaming"}`)
    or plain progress."""
    if isinstance(raw, dict) and raw.get("streaming") and "text" in raw:
        return Update("text", progress=progress_of(raw), text=str(raw["text"]))
    return Update("progress", progress=progress_of(raw))
