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
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from agentqueue import catalog
from agentqueue.backend import Backend, SyncPortal
from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.definition import BackoffKind, HandlerFn, JobDefinition, input_model
from agentqueue.engine.middleware import Middleware
from agentqueue.errors import UnknownJobType
from agentqueue.handle import Job
from agentqueue.records.views import NO_OWNER, JobOwner

T = TypeVar("T")
F = TypeVar("F", bound=HandlerFn)
Owner = JobOwner  # who a job belongs to: Owner(user_id="u1", org_id="acme")

DEFAULT_QUEUE = "jobs"


class App:
    """Your job types, and the calls to enqueue and follow them."""

    def __init__(
        self, settings: Settings | None = None, *, middleware: Sequence[Middleware] = ()
    ) -> None:
        """`middleware`: your worker middleware (`agentqueue.Middleware`), run in this order
        around each job by `agentqueue worker|serve module:app`, after the built-in ones."""
        self.settings = settings if settings is not None else Settings()
        self.middleware: list[Middleware] = list(middleware)
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
                name, queue, input or input_model(fn), fn, attempts=attempts, backoff=backoff,
                backoff_ms=backoff_ms, timeout=timeout, priority=priority,
            )
            return fn

        return define

    def add_middleware(self, middleware: Middleware) -> None:
        """Add a worker middleware after those given so far."""
        self.middleware.append(middleware)

    def install(self) -> None:
        """Serve and accept this App's job types, and run its middleware, in this process (what
        `agentqueue worker module:app` and `serve|api --app` do)."""
        for definition in self.definitions.values():
            catalog.register(definition.job_type(self.settings))
        catalog.use_middleware(self.middleware)

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


def _owner(owner: Owner | str | None) -> JobOwner:
    if owner is None:
        return NO_OWNER  # seen through the HTTP APIs by admins only
    if isinstance(owner, str):
        if not owner:
            raise ValueError("owner: a user id is non-empty")
        return JobOwner(user_id=owner)
    return owner
