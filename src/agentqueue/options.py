"""Enqueue options: what `App.enqueue` accepts, checked, and turned into BullMQ job options.

Every option is checked here before anything is written or queued (a bulk enqueue checks all its
jobs first), and converted in this one place:

| option                      | BullMQ job option (stored in the job's `opts` in Redis)       |
|-----------------------------|---------------------------------------------------------------|
| `priority` 0-10 (seed 002)  | `priority` (via `agentqueue.core.priority`)                   |
| `bullmq_priority`           | `priority`, unchanged (1 runs first)                          |
| `delay_ms`                  | `delay`                                                       |
| `attempts`                  | `attempts`                                                    |
| `backoff`, `backoff_ms`     | `backoff: {type, delay}`                                      |
| `timeout` (seconds)         | `timeout` (milliseconds; Bull 3's name, enforced by workers)  |
| `lifespan` / `expires_at`   | `expiresAt` (epoch ms: a job not started by then is not run)  |
| `job_id`                    | `jobId`                                                       |
| `dedup_key`, `dedup_ttl_ms` | `deduplication: {id, ttl}`                                    |
| `dedup_mode` "debounce"     | `deduplication: {id, ttl, extend: true, replace: true}`       |
| `keep_completed`            | `removeOnComplete` (a count, or `{age}` in seconds)           |
| `keep_failed`               | `removeOnFail`                                                |
| `notify`                    | `notify: {owner, targets}` (agentqueue's own: `handlers.notify`) |
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

from agentqueue.core import priority as priorities
from agentqueue.definition import BackoffKind, JobDefinition
from agentqueue.engine.jobs import is_custom_job_id
from agentqueue.records.views import NO_OWNER, JobOwner

# How long Redis keeps a finished job: a count of the newest, or an age.
Keep = int | timedelta


class EnqueueOptions(TypedDict, total=False):
    """The options of `App.enqueue` (keyword arguments), `enqueue_sync` and `enqueue_many`.

    Unset, the job type's defaults apply (`App.job`), then its queue's.
    """

    priority: int
    """0-10, higher runs first, 5 normal (seed 002's scale)."""
    bullmq_priority: int
    """BullMQ's own priority instead: 1 (first) to 2,097,152 (seed 004's `queue.add` option)."""
    delay_ms: int
    """Not run before this many milliseconds from now."""
    attempts: int
    """Runs at most this many times (1: no retry)."""
    backoff: BackoffKind
    """The wait between attempts: "exponential" (doubling) or "fixed"."""
    backoff_ms: int
    """The first (exponential) or every (fixed) wait between attempts."""
    timeout: float
    """Seconds an attempt may run before it fails (as a timeout; retried if attempts remain)."""
    lifespan: float
    """Seconds from now: a job not started by then is not run (it fails as expired)."""
    expires_at: datetime
    """`lifespan` as a moment (timezone-aware)."""
    job_id: str
    """Your id for the job, unique in its queue (not a number: those are agentqueue's). The id
    names one job for good: enqueuing it again returns a handle on that job, finished or not,
    whoever owns it (ids are per queue, not per owner: put the owner in the id if needed)."""
    dedup_key: str
    """Enqueuing with a key a queued or running job of the queue holds returns a handle on
    that job instead of queuing another (BullMQ's deduplication); the key is free again once
    the job finishes, or after `dedup_ttl_ms`."""
    dedup_ttl_ms: int
    """With `dedup_key`: the key holds for this long, even after the job has finished."""
    dedup_mode: str
    """With `dedup_key`, BullMQ's deduplication modes: "simple" (the default without
    `dedup_ttl_ms`: the key holds while the job is queued or running), "throttle" (the default
    with it: the key holds for `dedup_ttl_ms` from the first enqueue, finished or not), or
    "debounce" (needs `dedup_ttl_ms` and `delay_ms`: an enqueue while the held job is still
    delayed replaces it, with the new data and a fresh delay and ttl; the job replaced reads
    as cancelled, "replaced by job N (debounce)"). A debounce that finds the job already
    running answers that job, as the other modes do."""
    keep_completed: Keep
    """How long Redis keeps the job once completed: the newest N jobs (0: removed at once), or
    for a `timedelta`. Its record stays regardless (`result()` still answers)."""
    keep_failed: Keep
    """`keep_completed` for failed jobs."""
    owner: JobOwner | str
    """Who the job belongs to (a user id or `Owner`): who sees it through the HTTP APIs."""
    notify: list[dict[str, Any]]
    """Announce the job's outcome: `[{"on": ["completed", "failed"], "webhook": url}`, or
    `{"slack": url}`, `{"discord": url}`, `{"email": address}`] (see README "Notifications"):
    a job per target, owned as this one, once the job has ended for good."""
    repeat: dict[str, Any]
    """Seed 004's repeatable job (`App.enqueue` only): `{"cron": "0 3 * * *", "tz": ...}` or
    `{"every": ms}` (and `limit`, `startDate`, `endDate`, `key`) makes a schedule
    (`App.schedule`) and answers a handle on its first run."""


_KNOWN = frozenset(EnqueueOptions.__annotations__)


@dataclass(frozen=True)
class Planned:
    """One job, checked and ready to submit (`JobSubmitter.accept`'s arguments)."""

    queue: str
    name: str
    data: dict[str, Any]
    owner: JobOwner
    priority: int | None
    delay_ms: int | None
    attempts: int | None
    backoff: dict[str, Any] | None
    job_id: str | None
    deduplication: dict[str, Any] | None
    options: dict[str, Any] = field(default_factory=dict)

    def submission(self) -> dict[str, Any]:
        return {
            "queue": self.queue, "name": self.name, "data": self.data, "owner": self.owner,
            "priority": self.priority, "delay_ms": self.delay_ms, "attempts": self.attempts,
            "backoff": self.backoff, "job_id": self.job_id, "deduplication": self.deduplication,
            "options": self.options,
        }


def plan(definition: JobDefinition, data: dict[str, Any], options: EnqueueOptions,
         *, queue: str, queue_backoff_ms: int, validation_context: dict[str, Any] | None = None,
         now_ms: int | None = None) -> Planned:
    """Check `data` (`InvalidJobInput`, against `validation_context` as the APIs check it) and
    `options` (`ValueError`, `TypeError`) and turn them into a submission on `queue` (the
    type's, named from the settings). Nothing is written."""
    unknown = set(options) - _KNOWN
    if unknown:
        raise TypeError(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
    if "repeat" in options:
        raise TypeError("repeat: give it to App.enqueue (one job at a time), or use "
                        "App.schedule")
    validated = definition.validate(data, validation_context).model_dump(mode="json", by_alias=True)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    extra: dict[str, Any] = {}

    delay_ms = options.get("delay_ms")
    if delay_ms is not None:
        _whole(delay_ms, "delay_ms", minimum=0)
    attempts = options.get("attempts", definition.attempts)
    if attempts is not None:
        _whole(attempts, "attempts", minimum=1)

    timeout = options.get("timeout", definition.timeout)
    if timeout is not None:
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        extra["timeout"] = max(1, round(timeout * 1000))

    expires_ms = _expiry(options, now_ms)
    if expires_ms is not None:
        if expires_ms <= now_ms + (delay_ms or 0):
            raise ValueError("the job would expire before it could start (lifespan/expires_at "
                             "at or before now + delay_ms)")
        extra["expiresAt"] = expires_ms

    job_id = options.get("job_id")
    if job_id is not None and not (isinstance(job_id, str) and is_custom_job_id(job_id)):
        raise ValueError(f"job_id {job_id!r}: a job id of your own is printable text without "
                         "':', not a queue key name, and not a number (numbers are "
                         "agentqueue's own ids)")
    deduplication = _deduplication(options)

    keep_completed = options.get("keep_completed", definition.keep_completed)
    if keep_completed is not None:
        extra["removeOnComplete"] = check_keep(keep_completed, "keep_completed")
    keep_failed = options.get("keep_failed", definition.keep_failed)
    if keep_failed is not None:
        extra["removeOnFail"] = check_keep(keep_failed, "keep_failed")

    owner = owner_of(options.get("owner"))
    if options.get("notify"):
        # Loaded only for a job that asks (handlers.notify imports the job types it queues).
        from agentqueue.handlers.notify import OPTION, notify_option

        extra[OPTION] = notify_option(options["notify"], owner, validation_context)

    return Planned(
        queue=queue, name=definition.name, data=validated,
        owner=owner, priority=_priority(definition, options),
        delay_ms=delay_ms, attempts=attempts,
        backoff=_backoff(definition, options, queue_backoff_ms), job_id=job_id,
        deduplication=deduplication, options=extra,
    )


def owner_of(owner: JobOwner | str | None) -> JobOwner:
    if owner is None:
        return NO_OWNER  # seen through the HTTP APIs by admins only
    if isinstance(owner, str):
        if not owner:
            raise ValueError("owner: a user id is non-empty")
        return JobOwner(user_id=owner)
    return owner


def _priority(definition: JobDefinition, options: EnqueueOptions) -> int | None:
    """BullMQ's priority: the raw option as given, or seed 002's converted."""
    if "priority" in options and "bullmq_priority" in options:
        raise ValueError("give priority (0-10) or bullmq_priority, not both")
    if "bullmq_priority" in options:
        return priorities.from_bullmq(options["bullmq_priority"])
    chosen = options.get("priority", definition.priority)
    return None if chosen is None else priorities.from_seed002(chosen)


def _backoff(definition: JobDefinition, options: EnqueueOptions,
             queue_backoff_ms: int) -> dict[str, Any] | None:
    kind = options.get("backoff", definition.backoff)
    delay = options.get("backoff_ms", definition.backoff_ms)
    if kind is None and delay is None:
        return None  # the queue's
    if kind not in (None, "exponential", "fixed"):
        raise ValueError(f"backoff is 'exponential' or 'fixed', not {kind!r}")
    if delay is not None:
        _whole(delay, "backoff_ms", minimum=0)
    return {"type": kind or "exponential", "delay": queue_backoff_ms if delay is None else delay}


def _expiry(options: EnqueueOptions, now_ms: int) -> int | None:
    lifespan, expires_at = options.get("lifespan"), options.get("expires_at")
    if lifespan is not None and expires_at is not None:
        raise ValueError("give lifespan (seconds) or expires_at, not both")
    if lifespan is not None:
        if not isinstance(lifespan, int | float) or isinstance(lifespan, bool) or lifespan <= 0:
            raise ValueError("lifespan must be a positive number of seconds")
        return now_ms + round(lifespan * 1000)
    if expires_at is not None:
        if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
            raise ValueError("expires_at must be a timezone-aware datetime")
        return round(expires_at.timestamp() * 1000)
    return None


DEDUP_MODES = ("simple", "throttle", "debounce")


def _deduplication(options: EnqueueOptions) -> dict[str, Any] | None:
    key, ttl = options.get("dedup_key"), options.get("dedup_ttl_ms")
    mode = options.get("dedup_mode")
    if key is None:
        if ttl is not None or mode is not None:
            raise ValueError(f"{'dedup_ttl_ms' if ttl is not None else 'dedup_mode'} needs a "
                             "dedup_key")
        return None
    if mode is not None and mode not in DEDUP_MODES:
        raise ValueError(f"dedup_mode is one of {', '.join(DEDUP_MODES)}, not {mode!r}")
    if mode == "simple" and ttl is not None:
        raise ValueError("dedup_mode 'simple' holds the key while the job runs: no "
                         "dedup_ttl_ms (that is 'throttle')")
    if mode in ("throttle", "debounce") and ttl is None:
        raise ValueError(f"dedup_mode {mode!r} needs dedup_ttl_ms")
    if mode == "debounce" and not options.get("delay_ms"):
        raise ValueError("dedup_mode 'debounce' needs delay_ms: only a job still delayed is "
                         "replaced")
    if not isinstance(key, str) or not key:
        raise ValueError("dedup_key must be a non-empty string")
    deduplication: dict[str, Any] = {"id": key}
    if ttl is not None:
        deduplication["ttl"] = _whole(ttl, "dedup_ttl_ms", minimum=1)
    if mode == "debounce":  # BullMQ's debounce: replace the delayed job, restart its ttl
        deduplication.update(extend=True, replace=True)
    return deduplication


def check_keep(keep: Keep, option: str) -> int | dict[str, int]:
    if isinstance(keep, timedelta):
        seconds = keep.total_seconds()
        if seconds <= 0:
            raise ValueError(f"{option}: an age is positive")
        return {"age": max(1, round(seconds))}
    return _whole(keep, option, minimum=0)


def _whole(value: Any, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number of at least {minimum}, not {value!r}")
    return value
