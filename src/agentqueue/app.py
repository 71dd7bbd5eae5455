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
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel

from agentqueue import catalog
from agentqueue.backend import Backend, SyncPortal
from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.definition import BackoffKind, HandlerFn, JobDefinition, input_model
from agentqueue.errors import BulkEnqueueError, UnknownJobType
from agentqueue.handle import Job
from agentqueue.options import EnqueueOptions, Keep, Planned, check_keep, plan
from agentqueue.records.views import JobOwner

if TYPE_CHECKING:
    from typing_extensions import Unpack

T = TypeVar("T")
F = TypeVar("F", bound=HandlerFn)
Owner = JobOwner  # who a job belongs to: Owner(user_id="u1", org_id="acme")
# One job of `enqueue_many`: (name, data) or (name, data, options).
JobRequest = (tuple[str, BaseModel | dict[str, Any]]
              | tuple[str, BaseModel | dict[str, Any], EnqueueOptions])

DEFAULT_QUEUE = "jobs"


class App:
    """Your job types, and the calls to enqueue and follow them."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.definitions: dict[str, JobDefinition] = {}
        self._backends: dict[asyncio.AbstractEventLoop, asyncio.Future[Backend]] = {}
        self._portal: SyncPortal | None = None
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
        keep_completed: Keep | None = None,
        keep_failed: Keep | None = None,
    ) -> Callable[[F], F]:
        """Define job type `name`, run by the decorated `async def handler(ctx, data)`.

        `input` defaults to the model annotated on `data`. `attempts`, `backoff` (exponential or
        fixed, every `backoff_ms` milliseconds), `timeout` (seconds), `priority` (0-10,
        higher runs first, 5 normal) and `keep_completed`/`keep_failed` (how many finished jobs
        Redis keeps, or for how long as a `timedelta`) are its defaults, which `enqueue`'s
        options override; unset, its queue's apply.
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
        for keep, option in ((keep_completed, "keep_completed"), (keep_failed, "keep_failed")):
            if keep is not None:
                check_keep(keep, option)

        def define(fn: F) -> F:
            if not inspect.iscoroutinefunction(cast(Any, fn)):  # (no narrowing of F)
                raise TypeError(f"{fn.__qualname__}: a job handler is an async function")
            self.definitions[name] = JobDefinition(
                name, queue, input or input_model(fn), fn, attempts=attempts, backoff=backoff,
                backoff_ms=backoff_ms, timeout=timeout, priority=priority,
                keep_completed=keep_completed, keep_failed=keep_failed,
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
        self, name: str, data: BaseModel | dict[str, Any], **options: Unpack[EnqueueOptions]
    ) -> Job:
        """Record, then queue, a job of type `name`; a handle on it.

        Bad data raises `InvalidJobInput`, a bad option `ValueError` (an unknown one
        `TypeError`), and nothing is queued. The options (`EnqueueOptions`): `priority` (0-10,
        higher first) or `bullmq_priority`, `delay_ms`, `attempts`, `backoff` and `backoff_ms`,
        `timeout` (seconds per attempt), `lifespan` (seconds) or `expires_at` (not run if not
        started by then), `job_id`, `dedup_key` and `dedup_ttl_ms`, `keep_completed` and
        `keep_failed` (Redis retention; the record stays), and `owner` (a user id or `Owner`:
        who sees it through the HTTP APIs). Unset, the job type's defaults apply, then its
        queue's.

        With a `job_id` or `dedup_key` that a job of the queue already holds, nothing is
        queued and the handle is that job's (`Job.existing` is True).
        """
        return (await self._submit([self._plan(name, data, options)]))[0]

    def enqueue_sync(
        self, name: str, data: BaseModel | dict[str, Any], **options: Unpack[EnqueueOptions]
    ) -> Job:
        """`enqueue` for code without an event loop."""
        return self.run_sync(self.enqueue(name, data, **options))

    async def enqueue_many(self, jobs: Iterable[JobRequest]) -> list[Job]:
        """Enqueue several jobs: `(name, data)` or `(name, data, options)` each; their handles
        in the same order.

        Every job's data and options are checked before any is recorded or queued: one bad job
        raises (`InvalidJobInput` naming its index) and none is queued. Then they are queued
        one by one, each recorded first. If queuing fails part-way (Redis down), the jobs
        before it stay queued and `BulkEnqueueError` says which (`.queued`, handles) and why
        (its `__cause__`); the job that failed and those after it are not queued.
        """
        planned = []
        for index, request in enumerate(jobs):
            try:
                planned.append(self._plan(*request))
            except (TypeError, ValueError) as exc:  # InvalidJobInput and UnknownJobType too
                exc.args = (f"job {index}: {exc}",)
                raise
        return await self._submit(planned)

    async def _submit(self, planned: list[Planned]) -> list[Job]:
        backend = await self._backend()
        handles: list[Job] = []
        for job in planned:
            backend.queue(job.queue)  # the submitter's queue, opened once per loop
            try:
                accepted = await backend.submitter.accept(**job.submission())
            except Exception as exc:
                if not handles:
                    raise
                raise BulkEnqueueError(handles) from exc
            handles.append(Job(self, accepted.queue, accepted.job_id, existing=accepted.existing))
        return handles

    def enqueue_many_sync(self, jobs: Iterable[JobRequest]) -> list[Job]:
        """`enqueue_many` for code without an event loop."""
        return self.run_sync(self.enqueue_many(list(jobs)))

    def _plan(self, name: str, data: BaseModel | dict[str, Any],
              options: EnqueueOptions | None = None) -> Planned:
        from agentqueue.services import queue_defaults

        definition = self.definitions.get(name)
        if definition is None:
            known = ", ".join(self.definitions) or "none"
            raise UnknownJobType(f"unknown job type {name!r}; defined: {known}")
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json", by_alias=True)
        backoff_ms = queue_defaults(self.settings, definition.queue).backoff_ms
        return plan(definition, data, options or {}, queue_backoff_ms=backoff_ms)

    def job_handle(self, queue: str, job_id: str) -> Job:
        """A handle on a job already queued (by id)."""
        return Job(self, queue, job_id)

    # -- connections ---------------------------------------------------------------------------

    async def _backend(self) -> Backend:
        loop = asyncio.get_running_loop()
        opening = self._backends.get(loop)
        if opening is None:
            opening = self._backends[loop] = loop.create_task(Backend.open(self.settings))
        try:
            return await asyncio.shield(opening)
        except Exception:
            self._backends.pop(loop, None)  # the next call tries again
            raise

    def run_sync(self, call: Coroutine[Any, Any, T]) -> T:
        with self._portal_lock:
            if self._portal is None:
                self._portal = SyncPortal()
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

