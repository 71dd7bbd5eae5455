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
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from agentqueue.backend import Backend, SyncPortal
from agentqueue.config import Settings
from agentqueue.core import debounce
from agentqueue.core.dead_letters import DeadLetter, ReplayOutcome
from agentqueue.definition import (
    BackoffKind,
    HandlerFn,
    JobDefinition,
    QueueRef,
    validation_context,
)
from agentqueue.engine.middleware import Middleware
from agentqueue.engine.schedules import DEFAULT_GRACE_MS
from agentqueue.errors import BulkEnqueueError, UnknownJobType
from agentqueue.flows import Flow, FlowRun
from agentqueue.handle import Job
from agentqueue.options import EnqueueOptions, Keep, Planned, plan
from agentqueue.queues import Queue
from agentqueue.records.views import JobOwner
from agentqueue.registry import DEFAULT_QUEUE, JobRegistry
from agentqueue.scheduling import CatchUp, Schedule, Scheduling, schedule_of
from agentqueue.serving import builtin_types, serve

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from agentqueue.core.documents import SearchResult
    from agentqueue.core.limits import LimitStore
    from agentqueue.records.documents import DocumentView

T = TypeVar("T")
F = TypeVar("F", bound=HandlerFn)
Owner = JobOwner  # who a job belongs to: Owner(user_id="u1", org_id="acme")
# One job of `enqueue_many`: (name, data) or (name, data, options).
JobRequest = (tuple[str, BaseModel | dict[str, Any]]
              | tuple[str, BaseModel | dict[str, Any], EnqueueOptions])


class App:
    """Your job types, and the calls to enqueue and follow them.

    The App knows the built-in types too (`enqueue("summarize", {...})` works), unless made
    with `builtin=False`. `middleware`: your worker middleware (`agentqueue.Middleware`), run in
    this order around each job by `agentqueue worker|serve module:app`, after the built-in ones.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        builtin: bool = True,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.registry = JobRegistry()  # this App's own types
        self.builtin = builtin
        self.middleware: list[Middleware] = list(middleware)
        self._agents: list[str] | None = None
        self._backends: dict[asyncio.AbstractEventLoop, asyncio.Future[Backend]] = {}
        self._portal: SyncPortal | None = None
        self._portal_lock = threading.Lock()
        self._schedules: Scheduling | None = None

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
        keep_completed: Keep | None = None,
        keep_failed: Keep | None = None,
    ) -> Callable[[F], F]:
        """Define job type `name`, run by the decorated `async def handler(ctx, data)`.

        `queue` is a queue name, or a function of the settings naming one. `input` defaults to
        the model annotated on `data`. `attempts`, `backoff` (exponential or fixed, every
        `backoff_ms` milliseconds), `timeout` (seconds), `priority` (0-10, higher runs first,
        5 normal) and `keep_completed`/`keep_failed` (how many finished jobs Redis keeps, or for
        how long as a `timedelta`) are its defaults, which `enqueue`'s options override; unset,
        its queue's apply. (The built-in types are defined with this same decorator, on
        agentqueue's own registry.)
        """
        if name in builtin_types():
            raise ValueError(f"job type {name!r} is built in; choose another name")
        return self.registry.job(name, queue=queue, input=input, attempts=attempts,
                                 backoff=backoff, backoff_ms=backoff_ms, timeout=timeout,
                                 priority=priority, keep_completed=keep_completed,
                                 keep_failed=keep_failed)

    @property
    def definitions(self) -> dict[str, JobDefinition]:
        """This App's own types, by name."""
        return {definition.name: definition for definition in self.registry}

    def types(self, *, builtin: bool | None = None) -> JobRegistry:
        """Every type this App knows: the built-in ones (unless `builtin` is false; default:
        the App's), then its own, in one registry."""
        with_builtin = self.builtin if builtin is None else builtin
        return builtin_types().merged(self.registry) if with_builtin else self.registry

    def add_middleware(self, middleware: Middleware) -> None:
        """Add a worker middleware after those given so far."""
        self.middleware.append(middleware)

    def install(self, *, builtin: bool | None = None) -> None:
        """Serve and accept this App's types, and run its middleware, in this process, beside
        the built-in types unless `builtin` is false (what `agentqueue worker module:app
        [--no-builtin]` and `serve|api --app` do)."""
        serve(self.types(builtin=builtin), middleware=self.middleware)

    @property
    def queues(self) -> list[str]:
        """The queues of this App's own types."""
        return self.registry.queues(self.settings)

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

        `repeat` (seed 004's repeatable jobs: `{"cron": ..., "tz": ...}` or `{"every": ms}`)
        makes a schedule instead (see `schedule`) and answers a handle on its first run.
        """
        if "repeat" in options:
            repeat = options.pop("repeat")
            return await self._scheduling.from_repeat(name, data, repeat, options)
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
            jobs = backend.queue(job.queue)  # the submitter's queue, opened once per loop
            try:
                previous = await debounce.held_before(jobs, job.deduplication)
                accepted = await backend.submitter.accept(**job.submission())
                await debounce.settle_replaced(backend.records, jobs, previous, accepted)
            except Exception as exc:
                if not handles:
                    raise
                raise BulkEnqueueError(handles) from exc
            handles.append(Job(self, accepted.queue, accepted.job_id, existing=accepted.existing))
        return handles

    async def enqueue_flow(self, flow: Flow) -> FlowRun:
        """Record, then queue in one transaction, a flow: `flow`'s job runs once its
        children's have finished (see `agentqueue.flows`); handles on all of them. Every node
        is checked first (`InvalidJobInput` or `ValueError` naming it): one bad, none queued."""
        from agentqueue.core.flows import submit_flow
        from agentqueue.flows import handles, plan_flow

        root = plan_flow(self, flow)
        backend = await self._backend()
        for node in root.walk():
            backend.queue(node.queue)
        return handles(self, await submit_flow(backend.submitter, root))

    def enqueue_flow_sync(self, flow: Flow) -> FlowRun:
        """`enqueue_flow` for code without an event loop."""
        return self.run_sync(self.enqueue_flow(flow))

    def enqueue_many_sync(self, jobs: Iterable[JobRequest]) -> list[Job]:
        """`enqueue_many` for code without an event loop."""
        return self.run_sync(self.enqueue_many(list(jobs)))

    def _plan(self, name: str, data: BaseModel | dict[str, Any],
              options: EnqueueOptions | None = None) -> Planned:
        from agentqueue.core.queue_profiles import queue_defaults

        types = self.types()
        definition = types.get(name)
        if definition is None:
            known = ", ".join(types.names()) or "none"
            raise UnknownJobType(f"unknown job type {name!r}; defined: {known}")
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json", by_alias=True)
        queue = definition.queue_name(self.settings)
        return plan(definition, data, options or {}, queue=queue,
                    queue_backoff_ms=queue_defaults(self.settings, queue).backoff_ms,
                    validation_context=self._validation_context())

    def _validation_context(self) -> dict[str, Any]:
        """As the HTTP APIs check input: the operator's limits and the known agents."""
        if self._agents is None:
            from agentqueue.services import load_agents

            self._agents = load_agents(self.settings).ids()
        return validation_context(self.settings, self._agents)

    # -- schedules (scheduling.py) ---------------------------------------------------------------

    @property
    def _scheduling(self) -> Scheduling:
        if self._schedules is None:
            self._schedules = Scheduling(self)
        return self._schedules

    async def schedule(
        self, name: str, data: BaseModel | dict[str, Any], *, cron: str | None = None,
        every_ms: int | None = None, tz: str | None = None,
        start: datetime | int | None = None, end: datetime | int | None = None,
        limit: int | None = None, schedule_id: str | None = None, catch_up: CatchUp = "once",
        grace_ms: int = DEFAULT_GRACE_MS, paused: bool = False,
        **options: Unpack[EnqueueOptions],
    ) -> Schedule:
        """Run job type `name` with `data` by `cron` (in IANA time zone `tz`, UTC by
        default) or `every_ms` milliseconds, from `start` until `end` (datetimes or epoch
        ms), at most `limit` times; a `Schedule` with its next run.

        `schedule_id` names it (given again, the schedule is replaced; default: derived from
        the type and the timing). `catch_up`: what a run missed while no worker was up does
        when a worker comes back: "once" (the default: it runs once, late, however many ticks
        were missed) or "skip" (a run taken more than `grace_ms` late completes without
        running). `options`: the runs' enqueue options (priority, attempts, backoff, timeout,
        keep_completed, keep_failed, owner). Bad timing raises `InvalidSchedule` (a
        ValueError), bad data `InvalidJobInput`, and nothing is scheduled.
        """
        return await self._scheduling.create(
            name, data, cron=cron, every_ms=every_ms, tz=tz, start=start, end=end, limit=limit,
            schedule_id=schedule_id, catch_up=catch_up, grace_ms=grace_ms, paused=paused,
            options=options)

    def schedule_sync(self, name: str, data: BaseModel | dict[str, Any],
                      **kwargs: Any) -> Schedule:
        """`schedule` for code without an event loop."""
        return self.run_sync(self.schedule(name, data, **kwargs))

    async def schedules(self, queue: str | None = None) -> list[Schedule]:
        """Every schedule (of `queue`, if given), the next to run first."""
        service = await self._scheduling.service()
        return [schedule_of(view) for view in await service.list(queue=queue)]

    def schedules_sync(self, queue: str | None = None) -> list[Schedule]:
        return self.run_sync(self.schedules(queue))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """Schedule `schedule_id`; `ScheduleNotFound` (a `LookupError`) if there is none."""
        return schedule_of(await (await self._scheduling.service()).get(schedule_id))

    def get_schedule_sync(self, schedule_id: str) -> Schedule:
        return self.run_sync(self.get_schedule(schedule_id))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        """Queue no run until `resume_schedule` (the next one already queued is taken back)."""
        return schedule_of(await (await self._scheduling.service()).pause(schedule_id))

    def pause_schedule_sync(self, schedule_id: str) -> Schedule:
        return self.run_sync(self.pause_schedule(schedule_id))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        """Run again from the next time after now (ticks while paused are not made up)."""
        return schedule_of(await (await self._scheduling.service()).resume(schedule_id))

    def resume_schedule_sync(self, schedule_id: str) -> Schedule:
        return self.run_sync(self.resume_schedule(schedule_id))

    async def remove_schedule(self, schedule_id: str) -> bool:
        """Delete the schedule and its next run; runs already taken finish, records stay."""
        return await (await self._scheduling.service()).remove(schedule_id)

    def remove_schedule_sync(self, schedule_id: str) -> bool:
        return self.run_sync(self.remove_schedule(schedule_id))

    async def schedule_runs(self, schedule_id: str, limit: int = 20) -> list[Job]:
        """Handles on the schedule's runs so far, newest first (a run is listed once a worker
        has taken it)."""
        return await self._scheduling.runs(schedule_id, limit)

    def schedule_runs_sync(self, schedule_id: str, limit: int = 20) -> list[Job]:
        return self.run_sync(self.schedule_runs(schedule_id, limit))

    def job_handle(self, queue: str, job_id: str) -> Job:
        """A handle on a job already queued (by id)."""
        return Job(self, queue, job_id)

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        """A handle on queue `name`: counts, lists, pause, clean, drain, events (queues.py)."""
        if ":" in name or not name:
            raise ValueError(f"queue {name!r}: a queue name is non-empty and has no ':'")
        return Queue(self, name)

    # -- dead letters (seed 002): jobs that failed for good -------------------------------------

    async def dead_letters(self, queue: str | None = None, *, type: str | None = None,  # noqa: A002
                           limit: int = 20, offset: int = 0) -> list[DeadLetter]:
        """Jobs that failed for good (all attempts spent, or a permanent error), newest first,
        every owner's, with error and stack (`agentqueue.core.dead_letters`)."""
        from agentqueue import dead_letter_calls

        return await dead_letter_calls.list_letters(self, queue, type, limit, offset)

    async def replay(self, queue: str, job_id: str, *,
                     data: BaseModel | dict[str, Any] | None = None) -> Job:
        """Run dead letter `job_id` again under its id, attempts from zero; `data` (checked
        as `enqueue` checks it) replaces its data. `JobNotFound` if it is no dead letter."""
        from agentqueue import dead_letter_calls

        await dead_letter_calls.replay_one(self, queue, job_id, data)
        return Job(self, queue, job_id, existing=True)

    async def replay_dead_letters(
        self, jobs: Iterable[tuple[str, str]] | None = None, *, queue: str | None = None,
        type: str | None = None, data: BaseModel | dict[str, Any] | None = None,  # noqa: A002
        limit: int = 1000,
    ) -> list[ReplayOutcome]:
        """Replay the dead letters `jobs` ((queue, job id) each), or all of them (of `queue`
        and `type`, up to `limit`); one outcome each (`.replayed`, `.error`)."""
        from agentqueue import dead_letter_calls

        return await dead_letter_calls.replay_many(self, jobs, queue, type, data, limit)

    def dead_letters_sync(self, queue: str | None = None, *, type: str | None = None,  # noqa: A002
                          limit: int = 20, offset: int = 0) -> list[DeadLetter]:
        return self.run_sync(self.dead_letters(queue, type=type, limit=limit, offset=offset))

    def replay_sync(self, queue: str, job_id: str, *,
                    data: BaseModel | dict[str, Any] | None = None) -> Job:
        return self.run_sync(self.replay(queue, job_id, data=data))

    def replay_dead_letters_sync(
        self, jobs: Iterable[tuple[str, str]] | None = None, *, queue: str | None = None,
        type: str | None = None, data: BaseModel | dict[str, Any] | None = None,  # noqa: A002
        limit: int = 1000,
    ) -> list[ReplayOutcome]:
        return self.run_sync(self.replay_dead_letters(
            None if jobs is None else list(jobs), queue=queue, type=type, data=data,
            limit=limit))

    async def limits(self) -> LimitStore:
        """The rate limits, tenant caps and budgets in force, to read (`await .rules()`) or
        change at run time for every process (`await .update({...})`, `.reset()`)."""
        return (await self._backend()).limits

    async def budget(self, org_id: str) -> dict[str, Any]:
        """Organization `org_id`'s budgets: limit, used and remaining, today and this month."""
        return await (await self._backend()).budgets.report(org_id)

    # -- documents (what `document-processing` jobs indexed) ------------------------------------

    async def search_documents(self, query: str, *, owner: Owner, limit: int = 5,
                               provider: str | None = None,
                               model: str | None = None) -> SearchResult:
        """The chunks of `owner`'s documents (its organization's, or the user's own without
        one) closest to `query`, best first; `provider`/`model` as the documents were
        embedded (default: the offline all-MiniLM-L6-v2)."""
        return await (await self._backend()).documents().search(
            owner, query, limit=limit, provider=provider, model=model)

    def search_documents_sync(self, query: str, *, owner: Owner, limit: int = 5,
                              provider: str | None = None,
                              model: str | None = None) -> SearchResult:
        return self.run_sync(self.search_documents(query, owner=owner, limit=limit,
                                                   provider=provider, model=model))

    async def documents(self, *, owner: Owner, limit: int = 50,
                        offset: int = 0) -> list[DocumentView]:
        """`owner`'s documents, the most recently processed first."""
        views, _total = await (await self._backend()).documents().list_documents(
            owner, limit=limit, offset=offset)
        return views

    def documents_sync(self, *, owner: Owner, limit: int = 50,
                       offset: int = 0) -> list[DocumentView]:
        return self.run_sync(self.documents(owner=owner, limit=limit, offset=offset))

    async def get_document(self, document_id: str, *, owner: Owner) -> DocumentView | None:
        return await (await self._backend()).documents().get(owner, document_id)

    def get_document_sync(self, document_id: str, *, owner: Owner) -> DocumentView | None:
        return self.run_sync(self.get_document(document_id, owner=owner))

    async def delete_document(self, document_id: str, *, owner: Owner) -> bool:
        """Remove the document and its chunks; False if `owner` has no such document."""
        return await (await self._backend()).documents().delete(owner, document_id)

    def delete_document_sync(self, document_id: str, *, owner: Owner) -> bool:
        return self.run_sync(self.delete_document(document_id, owner=owner))

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

    def iterate_sync(self, stream: AsyncGenerator[T, None]) -> Iterator[T]:
        """A blocking iterator over `stream`, each item read on the private loop as the
        iteration asks for it (the sync twin of an `async for`)."""

        async def following() -> T:
            return await anext(stream)

        try:
            while True:
                try:
                    yield self.run_sync(following())
                except StopAsyncIteration:
                    return
        finally:
            self.run_sync(stream.aclose())

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

