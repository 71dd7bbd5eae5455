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
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pydantic import BaseModel

from agentqueue.backend import Backend, SyncPortal
from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.definition import (
    BackoffKind,
    HandlerFn,
    JobDefinition,
    QueueRef,
    validation_context,
)
from agentqueue.errors import UnknownJobType
from agentqueue.handle import Job
from agentqueue.queues import Queue
from agentqueue.records.views import NO_OWNER, JobOwner
from agentqueue.registry import DEFAULT_QUEUE, JobRegistry, builtin_types, serve

T = TypeVar("T")
F = TypeVar("F", bound=HandlerFn)
Owner = JobOwner  # who a job belongs to: Owner(user_id="u1", org_id="acme")


class App:
    """Your job types, and the calls to enqueue and follow them.

    The App knows the built-in types too (`enqueue("summarize", {...})` works), unless made
    with `builtin=False`.
    """

    def __init__(self, settings: Settings | None = None, *, builtin: bool = True) -> None:
        self.settings = settings if settings is not None else Settings()
        self.registry = JobRegistry()  # this App's own types
        self.builtin = builtin
        self._agents: list[str] | None = None
        self._backends: dict[asyncio.AbstractEventLoop, asyncio.Future[Backend]] = {}
        self._portal: SyncPortal | None = None
        self._portal_lock = threading.Lock()

    # -- defining job types --------------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        queue: QueueRef = DEFAULT_QUEUE,
        input: type[BaseModel] | None = None,  # noqa: A002 - the natural name here
        attempts: int | None = None,
        backoff: BackoffKind | None = None,
        backoff_ms: int | None = None,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> Callable[[F], F]:
        """Define job type `name`, run by the decorated `async def handler(ctx, data)`.

        `queue` is a queue name, or a function of the settings naming one. `input` defaults to
        the model annotated on `data`. `attempts`, `backoff` (exponential or fixed, every
        `backoff_ms` milliseconds), `timeout` (seconds) and `priority` (0-10, higher runs
        first, 5 normal) are its defaults; unset, its queue's apply. (The built-in types are
        defined with this same decorator, on agentqueue's own registry.)
        """
        if name in builtin_types():
            raise ValueError(f"job type {name!r} is built in; choose another name")
        return self.registry.job(name, queue=queue, input=input, attempts=attempts,
                                 backoff=backoff, backoff_ms=backoff_ms, timeout=timeout,
                                 priority=priority)

    @property
    def definitions(self) -> dict[str, JobDefinition]:
        """This App's own types, by name."""
        return {definition.name: definition for definition in self.registry}

    def types(self, *, builtin: bool | None = None) -> JobRegistry:
        """Every type this App knows: the built-in ones (unless `builtin` is false; default:
        the App's), then its own, in one registry."""
        with_builtin = self.builtin if builtin is None else builtin
        return builtin_types().merged(self.registry) if with_builtin else self.registry

    def install(self, *, builtin: bool | None = None) -> None:
        """Serve and accept this App's types in this process, beside the built-in ones unless
        `builtin` is false (what `agentqueue worker module:app [--no-builtin]` and `serve|api
        --app` do)."""
        serve(self.types(builtin=builtin))

    @property
    def queues(self) -> list[str]:
        """The queues of this App's own types."""
        return self.registry.queues(self.settings)

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
        """Record, then queue, a job of type `name` (one of this App's or a built-in type); bad
        data raises `InvalidJobInput` and nothing is queued. `priority` is 0-10, higher runs
        first (the type's, else 5). `owner` (a user id or `Owner`) is who sees it through the
        HTTP APIs."""
        types = self.types()
        definition = types.get(name)
        if definition is None:
            known = ", ".join(types.names()) or "none"
            raise UnknownJobType(f"unknown job type {name!r}; defined: {known}")
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json", by_alias=True)
        validated = definition.validate(data, self._validation_context())
        if delay_ms is not None and delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        if attempts is not None and attempts < 1:
            raise ValueError("attempts must be at least 1")
        chosen = priority if priority is not None else definition.priority
        queue = definition.queue_name(self.settings)
        backend = await self._backend()
        backend.queue(queue)  # the submitter's queue, opened once per loop
        record = await backend.submitter.submit(
            queue=queue, name=name,
            data=validated.model_dump(mode="json", by_alias=True), owner=_owner(owner),
            priority=None if chosen is None else priorities.from_seed002(chosen),
            delay_ms=delay_ms, attempts=attempts or definition.attempts,
            backoff=definition.backoff_option(self.settings),
        )
        return Job(self, record.queue, record.job_id)

    def _validation_context(self) -> dict[str, Any]:
        """As the HTTP APIs check input: the operator's limits and the known agents."""
        if self._agents is None:
            from agentqueue.services import load_agents

            self._agents = load_agents(self.settings).ids()
        return validation_context(self.settings, self._agents)

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

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        """A handle on queue `name`: counts, lists, pause, clean, drain, events (queues.py)."""
        if ":" in name or not name:
            raise ValueError(f"queue {name!r}: a queue name is non-empty and has no ':'")
        return Queue(self, name)

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
