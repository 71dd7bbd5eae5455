"""The bullmq package's Lua scripts for one queue, as a worker loop runs them.

Same scripts, keys and arguments as the package's (and Node BullMQ's) worker, so Node producers,
workers, `QueueEvents` and dashboards see nothing different. What differs is how they are sent:
the hot ones (`moveToActive`, `moveToFinished`, `extendLocks`, and a job's `updateProgress`) go
through a `CommandChannel`, and a job's hash is turned into a `Job` with orjson. Retries,
backoff and the failed path stay the package's own (`Job.moveToFailed`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson
import redis.asyncio as redis
from bullmq import Job
from bullmq.backends.redis_backend import RedisBackend
from bullmq.backoffs import Backoffs
from bullmq.job import getReturnValue, optsFromJSON
from bullmq.redis_connection import RedisConnection
from bullmq.utils import get_parent_key

from agentqueue.engine.channel import CommandChannel


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what orjson refuses (NaN, huge ints), json still reads
        return json.loads(text)


@dataclass
class Fetched:
    """What a fetch (moveToActive, or moveToFinished's fetch-next) answered."""

    job: Job | None
    # Epoch ms of the next delayed job (0: none), and until when the queue is rate limited.
    delay_until: int = 0
    limit_until: int = 0


_EMPTY = Fetched(None)


class _ChannelBackend(RedisBackend):
    """The package's backend, with a job's progress reports sent through the channel: a
    thousand jobs reporting progress at once cost a few socket writes, not a thousand pooled
    connections (the script, keys and arguments are the package's)."""

    def __init__(self, channel: CommandChannel, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel

    async def updateProgress(self, job_id: str, progress: Any) -> Any:  # noqa: N802 - bullmq's
        script = self.scripts.commands["updateProgress"]
        keys = [self.scripts.toKey(job_id), self.scripts.keys["events"],
                self.scripts.keys["meta"]]
        # As the package writes it (so readers of the job's hash see the same text).
        text = json.dumps(progress, separators=(",", ":"), allow_nan=False)
        result = await self.channel.evalsha(script.sha, script.script, keys, [job_id, text])
        if isinstance(result, int) and result < 0:
            raise self.scripts.finishedErrors({"code": result, "jobId": job_id,
                                               "command": "updateProgress"})
        return None


class QueueScripts:
    """One queue's scripts. Also what a `Job` calls its queue (`backend`, `opts`,
    `qualifiedName`): logs and `moveToFailed` go through the package as usual, progress through
    the channel."""

    def __init__(self, client: redis.Redis, channel: CommandChannel, *, queue: str,
                 prefix: str, lock_duration_ms: int, worker_name: str,
                 metrics_minutes: int = 0) -> None:
        self.channel = channel
        self.backend = _ChannelBackend(channel, queue, RedisConnection(client), prefix=prefix,
                                       owns_connection=False)
        self.scripts = self.backend.scripts
        self.qualifiedName = self.backend.qualifiedName
        # Read by the package's Job (moveToFinishedArgs, moveToDelayed's fetch-next).
        self.opts: dict[str, Any] = {"prefix": prefix, "lockDuration": lock_duration_ms}
        if metrics_minutes:  # the failed path's moveToFinished reads them here
            self.opts["metrics"] = {"maxDataPoints": metrics_minutes}
        self._metrics_size: int | str = metrics_minutes or ""
        self.lock_duration_ms = lock_duration_ms
        self.worker_name = worker_name
        keys = self.scripts.keys
        self.key_prefix: str = keys[""]
        commands = self.scripts.commands
        self._active = commands["moveToActive"]
        self._finished = commands["moveToFinished"]
        self._extend = commands["extendLocks"]
        self._active_keys = [keys[k] for k in (
            "wait", "active", "prioritized", "events", "stalled", "limiter", "delayed",
            "paused", "meta", "pc", "marker")]
        self._completed_keys = [keys[k] for k in (
            "wait", "active", "prioritized", "events", "stalled", "limiter", "delayed",
            "paused", "meta", "pc", "completed")]
        self._completed_metrics = self.scripts.toKey("metrics:completed")
        self._marker = keys["marker"]

    async def move_to_active(self, token: str) -> Fetched:
        """Take the next job (wait list, then prioritized; promotes due delayed jobs)."""
        opts = msgpack.packb({"token": token, "lockDuration": self.lock_duration_ms,
                              "limiter": None, "name": self.worker_name}, use_bin_type=True)
        raw = await self.channel.evalsha(
            self._active.sha, self._active.script, self._active_keys,
            [self.key_prefix, round(time.time() * 1000), opts])
        return self.fetched(raw, token)

    def completed_args(self, job: Job, result: Any, keep: Any, token: str,
                       fetch_next: bool) -> tuple[list[Any], list[Any]]:
        """moveToFinished's keys and arguments for a completed job, as the package's
        `moveToCompletedArgs` builds them (result in orjson); raises TypeError for a result
        JSON cannot hold."""
        opts = job.opts
        packed = msgpack.packb({
            "token": token,
            "name": self.worker_name,  # as Node's worker sends it: the next job's processedBy
            "keepJobs": _keep_jobs(keep),
            "limiter": None,
            "lockDuration": self.lock_duration_ms,
            "attempts": job.attempts,
            "attemptsMade": job.attemptsMade,
            "maxMetricsSize": self._metrics_size,
            "fpof": opts.get("failParentOnFailure", False),
            "cpof": opts.get("continueParentOnFailure", False),
            "idof": opts.get("ignoreDependencyOnFailure", False),
            "rdof": opts.get("removeDependencyOnFailure", False),
        }, use_bin_type=True)
        keys = [*self._completed_keys, self.key_prefix + str(job.id), self._completed_metrics,
                self._marker]
        args = [job.id, round(time.time() * 1000), "returnvalue", _dumps(result), "completed",
                "1" if fetch_next else "", self.key_prefix, packed]
        return keys, args

    async def move_to_completed(self, job: Job, result: Any, keys: list[Any],
                                args: list[Any]) -> Fetched:
        """Store the result and, if the arguments ask, take the next job in the same call,
        as Node's worker does."""
        raw = await self.channel.evalsha(self._finished.sha, self._finished.script, keys, args)
        if isinstance(raw, int) and raw < 0:
            raise self.scripts.finishedErrors({"code": raw, "jobId": job.id,
                                               "command": "moveToFinished", "state": "active"})
        job.finishedOn = args[1]
        job.returnvalue = result
        job.attemptsMade += 1
        return self.fetched(raw, str(job.token))  # the next job is locked with the same token

    async def extend_locks(self, job_ids: list[str], tokens: list[str]) -> list[str]:
        """Renew the locks of all these jobs in one call; the ids whose lock was lost."""
        failed = await self.channel.evalsha(
            self._extend.sha, self._extend.script, [self.scripts.keys["stalled"]],
            [self.key_prefix, msgpack.packb(tokens, use_bin_type=True),
             msgpack.packb(job_ids, use_bin_type=True), self.lock_duration_ms])
        return [str(job_id) for job_id in failed or []]

    def fetched(self, raw: Any, token: str) -> Fetched:
        """A fetch's reply: {hash, id, limitUntil, delayUntil}; 0 or nil when nothing. A job
        taken is locked with `token`."""
        if not raw or isinstance(raw, int):
            return _EMPTY
        if raw[0]:
            return Fetched(self.job_from_hash(raw[0], str(raw[1]), token))
        return Fetched(None, limit_until=int(raw[2] or 0), delay_until=int(raw[3] or 0))

    def fetched_from_package(self, result: list[Any] | None, token: str) -> Fetched:
        """The same, from the package's `raw2NextJobData` shape (what Job.moveToFailed gives)."""
        if not result:
            return _EMPTY
        data, job_id, limit_until, delay_until = result
        if data:
            return Fetched(self.job_from_fields(data, str(job_id), token))
        return Fetched(None, limit_until=int(limit_until or 0), delay_until=int(delay_until or 0))

    def job_from_hash(self, flat: list[str], job_id: str, token: str) -> Job:
        it = iter(flat)
        return self.job_from_fields(dict(zip(it, it, strict=True)), job_id, token)

    def job_from_fields(self, raw: dict[str, str], job_id: str, token: str) -> Job:
        """`Job.fromJSON` (and the `Job.__init__` it calls), field for field, without what
        only a new job needs (option validation, deduplication), parsing with orjson."""
        opts: dict[str, Any] = {"attempts": 0, "delay": 0}
        opts.update(optsFromJSON(_loads(raw.get("opts", "{}"))))
        opts["backoff"] = Backoffs.normalize(opts.get("backoff"))
        parent = opts.get("parent")
        stored_parent = raw.get("parent")
        returnvalue = raw.get("returnvalue")
        job = Job.__new__(Job)
        # Every attribute `Job.__init__` and `fromJSON` set, in one dict (the hot path).
        job.__dict__ = {
            "name": raw.get("name"),
            "id": job_id,
            "token": token,
            "opts": opts,
            "queue": self,
            "backend": self.backend,
            "queueQualifiedName": self.qualifiedName,
            "data": _loads(raw.get("data", "{}")),
            "progress": _loads(raw.get("progress", "0")),
            "timestamp": int(raw.get("timestamp", "0")),
            "delay": int(raw.get("delay", "0")),
            "priority": int(raw.get("priority", "0")),
            "attempts": opts.get("attempts", 1),
            "attemptsMade": int(raw.get("attemptsMade") or raw.get("atm") or "0"),
            "attemptsStarted": int(raw.get("ats") or 0),
            "stalledCounter": int(raw.get("stc") or "0"),
            "discarded": False,
            "removeOnComplete": opts.get("removeOnComplete", True),
            "removeOnFail": opts.get("removeOnFail", False),
            "processedOn": int(raw.get("processedOn") or 0),
            "finishedOn": int(raw.get("finishedOn") or 0),
            "returnvalue": (getReturnValue(returnvalue) if isinstance(returnvalue, str)
                            else None),
            "deferredFailure": raw.get("defa") or None,
            "failedReason": raw.get("failedReason") or None,
            "repeatJobKey": raw.get("rjk") or None,
            "stacktrace": _loads(raw.get("stacktrace", "[]")),
            "deduplication_id": None,
            "parentKey": raw.get("parentKey") or get_parent_key(parent),
            "parent": (_loads(stored_parent) if stored_parent
                       else {"id": parent.get("id"), "queueKey": parent.get("queue")}
                       if parent else None),
        }
        return job


def _keep_jobs(keep: Any) -> dict[str, Any]:
    """The package's `getKeepJobs`: removeOnComplete/removeOnFail as the script reads it."""
    if type(keep) is int:
        return {"count": keep}
    if isinstance(keep, dict):
        return keep
    return {"count": 0} if keep else {"count": -1}


def _dumps(value: Any) -> str:
    """A result as JSON (what `json.dumps` would write; orjson also writes dataclasses,
    datetimes and numpy arrays, and NaN as null)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
