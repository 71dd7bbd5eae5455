"""The public Python API: define job types, enqueue them, wait for their results.

    app = agentqueue.App()

    @app.job("data-conversion", attempts=3, timeout=600)
    async def convert(ctx, data: ConvertInput) -> dict: ...

    job = await app.enqueue("data-conversion", {...})
    result = await job.wait(timeout=60)

`agentqueue worker module:app` runs the types (beside the built-in ones); `agentqueue serve|api
--app module:app` also accepts them at `POST /api/jobs`.

Every call has a sync twin (`enqueue_sync`, `wait_sync`, …) for code without an event loop
(Flask, Django views, scripts). They run on one private event loop in a daemon thread that the
App owns: its Redis and database connections are opened once there and reused by every call, from
any thread. (`asyncio.run` per call would reconnect and re-check the schema on every call, and
could not share connections between calls, since they belong to the loop that opened them.)
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import redis.asyncio as redis
from pydantic import BaseModel, ValidationError

from agentqueue import catalog
from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.core.submission import JobSubmitter
from agentqueue.engine.connection import connect
from agentqueue.engine.jobs import FINISHED_STATES
from agentqueue.engine.queue import CANCELLED_REASON, CancelOutcome, JobQueue
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner

T = TypeVar("T")
HandlerFn = Callable[[JobContext, Any], Awaitable[Any]]
F = TypeVar("F", bound=HandlerFn)
BackoffKind = Literal["exponential", "fixed"]
Owner = JobOwner  # who a job belongs to: Owner(user_id="u1", org_id="acme")

DEFAULT_QUEUE = "jobs"
# Each blocking read of the events stream lasts at most this long before it is sent again.
_READ_SLICE_S = 5.0


class InvalidJobInput(ValueError):
    """The data does not fit the job type's input model; the message names each field."""


class UnknownJobType(ValueError):
    """No job type of that name is defined on this App."""


class JobFailed(Exception):
    """The job failed (all its attempts spent, its input refused, or it was cancelled)."""

    def __init__(self, job_id: str, queue: str, reason: str) -> None:
        super().__init__(f"job {job_id} of {queue!r} failed: {reason}")
        self.job_id, self.queue, self.reason = job_id, queue, reason


class JobNotFound(LookupError):
    """Neither Redis nor the records know the job (removed, or never added here)."""


class JobNotFinished(RuntimeError):
    """`result()` of a job that is still waiting or running (use `wait`)."""


def describe(exc: ValidationError) -> str:
    """One line naming each invalid field of a job's data and what is wrong with it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in ("data", *error.get("loc", ())))
        text = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            text = "is required"
        elif error.get("type") == "extra_forbidden":
            text = "unknown field"
        parts.append(f"{where}: {text}")
    return "; ".join(parts) or "invalid data"


@dataclass(frozen=True)
class JobDefinition:
    """A job type defined with `App.job`."""

    name: str
    queue: str
    input: type[BaseModel]
    handler: HandlerFn
    attempts: int | None = None
    backoff: BackoffKind | None = None
    backoff_ms: int | None = None
    timeout: float | None = None
    priority: int | None = None  # 0-10, higher runs first (seed 002's scale)

    def validate(self, data: Any) -> BaseModel:
        try:
            return self.input.model_validate(data)
        except ValidationError as exc:
            raise InvalidJobInput(f"{self.name}: {describe(exc)}") from None

    async def run(self, ctx: JobContext) -> Any:
        """The worker's handler: input checked (a misfit fails at once, no retry), the user's
        function run under the type's time limit, its result made JSON."""
        try:
            data = self.input.model_validate(ctx.data or {})
        except ValidationError as exc:
            raise PermanentJobError(f"invalid job data: {describe(exc)}") from exc
        if self.timeout is None:
            result = await self.handler(ctx, data)
        else:
            limit = asyncio.timeout(self.timeout)
            try:
                async with limit:
                    result = await self.handler(ctx, data)
            except TimeoutError as exc:
                if not limit.expired():
                    raise  # the handler's own: its message stands
                raise TimeoutError(f"job timed out after {self.timeout:g}s") from exc
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    def job_type(self, settings: Settings) -> catalog.JobType:
        from agentqueue.services import queue_defaults

        backoff = None
        if self.backoff is not None or self.backoff_ms is not None:
            delay = self.backoff_ms
            if delay is None:  # the queue's delay
                delay = queue_defaults(settings, self.queue).backoff_ms
            backoff = {"type": self.backoff or "exponential", "delay": delay}
        return catalog.JobType(
            self.name, self.queue, self.input, handler=self.run, attempts=self.attempts,
            backoff=backoff,
            priority=None if self.priority is None else priorities.from_seed002(self.priority),
        )


def _input_model(fn: HandlerFn) -> type[BaseModel]:
    """The model annotated on the handler's second parameter (`data: MyInput`)."""
    params = list(inspect.signature(fn).parameters.values())
    hints = typing.get_type_hints(fn) if len(params) >= 2 else {}
    model = hints.get(params[1].name) if len(params) >= 2 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{fn.__qualname__}: annotate its data parameter with a pydantic model "
                        "(async def handler(ctx, data: MyInput)) or pass input=MyInput")
    return model


class _Backend:
    """The connections of one event loop: Redis, the queues, the records, the submitter."""

    def __init__(self, settings: Settings, client: redis.Redis, records: Records) -> None:
        self.settings = settings
        self.client = client
        self.records = records
        self.queues: dict[str, JobQueue] = {}
        self.submitter = JobSubmitter(self.queues, records, lease_s=settings.submit_lease_s)

    @classmethod
    async def open(cls, settings: Settings) -> _Backend:
        from agentqueue.services import open_records

        url = settings.external_redis_url
        if url is None:
            raise RuntimeError("set REDIS_URL (or REDIS_HOST) to the Redis the workers use")
        records = await open_records(settings)
        return cls(settings, connect(url), records)

    def queue(self, name: str) -> JobQueue:
        from agentqueue.services import queue_defaults

        if name not in self.queues:
            self.queues[name] = JobQueue(name, self.client, prefix=self.settings.queue_prefix,
                                         defaults=queue_defaults(self.settings, name))
        return self.queues[name]

    async def close(self) -> None:
        for queue in self.queues.values():
            await queue.close()
        await self.client.aclose()
        await self.records.close()


class _Portal:
    """A private event loop in a daemon thread, running the sync calls' coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agentqueue-sync",
                                       daemon=True)
        self.thread.start()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            call.close()
            raise RuntimeError("a sync agentqueue call inside a running event loop would block "
                               "it: await the async form instead")
        return asyncio.run_coroutine_threadsafe(call, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class App:
    """Your job types, and the calls to enqueue and follow them."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.definitions: dict[str, JobDefinition] = {}
        self._backends: dict[asyncio.AbstractEventLoop, asyncio.Future[_Backend]] = {}
        self._portal: _Portal | None = None
        self._portal_lock = threading.Lock()

    # -- defining job types --------------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        queue: str = DEFAULT_QUEUE,
        input: type[BaseModel] | None = None,  # noqa: A002 - the natural name here
        attempts: int | None = None,
        backoff: BackoffKind | None = None,
        backoff_ms: int | None = None,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> Callable[[F], F]:
        """Define job type `name`, run by the decorated `async def handler(ctx, data)`.

        `input` defaults to the model annotated on `data`. `attempts`, `backoff` (exponential or
        fixed, every `backoff_ms` milliseconds), `timeout` (seconds) and `priority` (0-10,
        higher runs first, 5 normal) are its defaults; unset, its queue's apply.
        """
        if name in catalog.BUILTIN_NAMES:
            raise ValueError(f"job type {name!r} is built in; choose another name")
        if name in self.definitions:
            raise ValueError(f"job type {name!r} is already defined")
        if ":" in queue or not queue:
            raise ValueError(f"queue {queue!r}: a queue name is non-empty and has no ':'")
        if attempts is not None and attempts < 1:
            raise ValueError("attempts must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        if priority is not None:
            priorities.from_seed002(priority)  # in range, or a ValueError saying so

        def define(fn: F) -> F:
            if not inspect.iscoroutinefunction(cast(Any, fn)):  # (no narrowing of F)
                raise TypeError(f"{fn.__qualname__}: a job handler is an async function")
            self.definitions[name] = JobDefinition(
                name, queue, input or _input_model(fn), fn, attempts=attempts, backoff=backoff,
                backoff_ms=backoff_ms, timeout=timeout, priority=priority,
            )
            return fn

        return define

    def install(self) -> None:
        """Serve and accept this App's job types in this process (what `agentqueue worker
        module:app` and `serve|api --app` do)."""
        for definition in self.definitions.values():
            catalog.register(definition.job_type(self.settings))

    @property
    def queues(self) -> list[str]:
        return list(dict.fromkeys(d.queue for d in self.definitions.values()))

    # -- enqueueing ----------------------------------------------------------------------------

    async def enqueue(
        self,
        name: str,
        data: BaseModel | dict[str, Any],
        *,
        priority: int | None = None,
        delay_ms: int | None = None,
        attempts: int | None = None,
        owner: Owner | str | None = None,
    ) -> Job:
        """Record, then queue, a job of type `name`; bad data raises `InvalidJobInput` and
        nothing is queued. `priority` is 0-10, higher runs first (the type's, else 5).
        `owner` (a user id or `Owner`) is who sees it through the HTTP APIs."""
        definition = self.definitions.get(name)
        if definition is None:
            known = ", ".join(self.definitions) or "none"
            raise UnknownJobType(f"unknown job type {name!r}; defined: {known}")
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json", by_alias=True)
        validated = definition.validate(data)
        if delay_ms is not None and delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        if attempts is not None and attempts < 1:
            raise ValueError("attempts must be at least 1")
        chosen = priority if priority is not None else definition.priority
        backend = await self._backend()
        backend.queue(definition.queue)  # the submitter's queue, opened once per loop
        record = await backend.submitter.submit(
            queue=definition.queue, name=name,
            data=validated.model_dump(mode="json", by_alias=True), owner=_owner(owner),
            priority=None if chosen is None else priorities.from_seed002(chosen),
            delay_ms=delay_ms, attempts=attempts or definition.attempts,
            backoff=definition.job_type(self.settings).backoff,
        )
        return Job(self, record.queue, record.job_id)

    def enqueue_sync(
        self,
        name: str,
        data: BaseModel | dict[str, Any],
        *,
        priority: int | None = None,
        delay_ms: int | None = None,
        attempts: int | None = None,
        owner: Owner | str | None = None,
    ) -> Job:
        """`enqueue` for code without an event loop."""
        return self.run_sync(self.enqueue(name, data, priority=priority, delay_ms=delay_ms,
                                          attempts=attempts, owner=owner))

    def job_handle(self, queue: str, job_id: str) -> Job:
        """A handle on a job already queued (by id)."""
        return Job(self, queue, job_id)

    # -- connections ---------------------------------------------------------------------------

    async def _backend(self) -> _Backend:
        loop = asyncio.get_running_loop()
        opening = self._backends.get(loop)
        if opening is None:
            opening = self._backends[loop] = loop.create_task(_Backend.open(self.settings))
        try:
            return await asyncio.shield(opening)
        except Exception:
            self._backends.pop(loop, None)  # the next call tries again
            raise

    def run_sync(self, call: Coroutine[Any, Any, T]) -> T:
        with self._portal_lock:
            if self._portal is None:
                self._portal = _Portal()
            portal = self._portal
        return portal.run(call)

    async def close(self) -> None:
        """Close the connections this event loop opened."""
        opening = self._backends.pop(asyncio.get_running_loop(), None)
        if opening is not None:
            await (await opening).close()

    def close_sync(self) -> None:
        """Close the sync calls' connections and stop their thread."""
        with self._portal_lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            portal.run(self.close())
            portal.stop()


def _owner(owner: Owner | str | None) -> JobOwner:
    if owner is None:
        return NO_OWNER  # seen through the HTTP APIs by admins only
    if isinstance(owner, str):
        if not owner:
            raise ValueError("owner: a user id is non-empty")
        return JobOwner(user_id=owner)
    return owner


class Job:
    """A handle on one job: its state, its result, waiting for it, cancelling it."""

    def __init__(self, app: App, queue: str, job_id: str) -> None:
        self.app = app
        self.queue = queue
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job(queue={self.queue!r}, id={self.id!r})"

    async def _snapshot(self) -> tuple[str, Any, str | None]:
        """(state, result, failure reason): from Redis, or from the record once Redis has
        dropped the job (retention)."""
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        if view is not None:
            return view.state, view.result, view.failed_reason
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
        return record.status, record.result, record.error

    async def status(self) -> str:
        """Its state: waiting, prioritized, delayed, paused, active, completed, failed or
        cancelled."""
        return (await self._snapshot())[0]

    state = status

    async def progress(self) -> Any:
        backend = await self.app._backend()
        view = await backend.queue(self.queue).get(self.id)
        return None if view is None else view.progress

    async def result(self) -> Any:
        """Its result if it completed; `JobFailed` if it failed; `JobNotFinished` if not yet."""
        state, result, reason = await self._snapshot()
        return self._outcome(state, result, reason, finished_only=False)

    def _outcome(self, state: str, result: Any, reason: str | None, *,
                 finished_only: bool = True) -> Any:
        if state == "completed":
            return result
        if state in FINISHED_STATES:
            cancelled = state == "cancelled"
            raise JobFailed(self.id, self.queue,
                            reason or (CANCELLED_REASON if cancelled else "failed"))
        if not finished_only:
            raise JobNotFinished(f"job {self.id} of {self.queue!r} is {state}")
        return _PENDING

    async def wait(self, timeout: float | None = None) -> Any:
        """Its result once it completes, or `JobFailed` once it fails (after its last
        attempt); `TimeoutError` after `timeout` seconds.

        Follows BullMQ's events stream (so it hears Node workers too), reading from the last
        entry written before the state was checked: an event in between is not missed.
        """
        backend = await self.app._backend()
        client = backend.client
        events = f"{self.app.settings.queue_prefix}:{self.queue}:events"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            last = cast(list[tuple[str, dict[str, str]]],
                        await client.xrevrange(events, count=1))
            after = last[0][0] if last else "0-0"
            outcome = self._outcome(*await self._snapshot())
            if outcome is not _PENDING:
                return outcome
            while True:
                left = _READ_SLICE_S if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {self.id} of {self.queue!r} did not finish "
                                       f"within {timeout:g}s")
                block_ms = max(1, int(min(left, _READ_SLICE_S) * 1000))
                read = await client.xread({events: after}, block=block_ms, count=500)
                event = None
                for _, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]],
                                       read or []):
                    for entry_id, fields in entries:
                        after = entry_id
                        if fields.get("jobId") == self.id and event is None:
                            event = fields if fields.get("event") in (
                                "completed", "failed", "removed") else None
                if event is None:
                    continue
                if event["event"] == "completed" and "returnvalue" in event:
                    return json.loads(event["returnvalue"])
                if event["event"] == "failed":
                    raise JobFailed(self.id, self.queue, event.get("failedReason") or "failed")
                break  # removed (cancelled?): read its state again

    async def cancel(self) -> bool:
        """Cancel it if it has not finished: a pending job is removed, an active one's worker
        is told to stop it. False if it had already finished."""
        backend = await self.app._backend()
        outcome = await backend.queue(self.queue).cancel(self.id)
        if outcome is CancelOutcome.ALREADY_FINISHED:
            return False
        if outcome is CancelOutcome.REQUESTED:
            return True  # the worker records its own cancellation
        record = await backend.records.get(self.queue, self.id)
        if record is None:
            if outcome is CancelOutcome.CANCELLED:
                return True
            if await backend.queue(self.queue).get(self.id) is None:  # not even a tombstone
                raise JobNotFound(f"job {self.id} of {self.queue!r} is unknown")
            return False  # cancelled already
        if record.status in FINISHED_STATES:
            return outcome is CancelOutcome.CANCELLED
        # Removed before it ran (or dropped by Redis already): the record says so.
        await backend.records.mark(self.queue, self.id, "cancelled", error=CANCELLED_REASON,
                                   message=CANCELLED_REASON)
        return True

    # -- sync twins ----------------------------------------------------------------------------

    def status_sync(self) -> str:
        return self.app.run_sync(self.status())

    def result_sync(self) -> Any:
        return self.app.run_sync(self.result())

    def wait_sync(self, timeout: float | None = None) -> Any:
        return self.app.run_sync(self.wait(timeout))

    def cancel_sync(self) -> bool:
        return self.app.run_sync(self.cancel())


_PENDING: Any = object()
