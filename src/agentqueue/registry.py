"""The registry of job types: one table for every API, every worker and the Python API.

A user defines types with `App.job` (the App's own registry); the built-in types (chat, batch,
summarize, …, webhook) are defined the same way, on a registry per family module under
`agentqueue.handlers` (listed together by `agentqueue.serving.builtin_types`). A process serves
one registry (`agentqueue.serving`): the built-in types plus those of the App given to
`agentqueue worker|serve|api` (or only the App's, with `--no-builtin`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.definition import BackoffKind, HandlerFn, JobDefinition, QueueRef, input_model
from agentqueue.options import Keep, check_keep

F = TypeVar("F", bound=HandlerFn)

DEFAULT_QUEUE = "jobs"


class JobRegistry:
    """Job types by name, in the order they were defined."""

    def __init__(self, definitions: list[JobDefinition] | None = None) -> None:
        self._types: dict[str, JobDefinition] = {}
        for definition in definitions or []:
            self.add(definition)

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

        `queue` is a queue name, or a function of the settings naming one (read when the type
        is served or enqueued: `queue=lambda s: s.agent_queue_name`). `input` defaults to the
        model annotated on `data`. `attempts`, `backoff` (exponential or fixed, every
        `backoff_ms` milliseconds), `timeout` (seconds) and `priority` (0-10, higher runs
        first, 5 normal) and `keep_completed`/`keep_failed` (how many finished jobs Redis
        keeps, or for how long as a `timedelta`) are its defaults; unset, its queue's apply.
        """
        if name in self._types:
            raise ValueError(f"job type {name!r} is already defined")
        if isinstance(queue, str) and (":" in queue or not queue):
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
            self.add(JobDefinition(
                name, queue, input or input_model(fn), fn, attempts=attempts, backoff=backoff,
                backoff_ms=backoff_ms, timeout=timeout, priority=priority,
                keep_completed=keep_completed, keep_failed=keep_failed,
            ))
            return fn

        return define

    def add(self, definition: JobDefinition) -> None:
        if definition.name in self._types:
            raise ValueError(f"job type {definition.name!r} is already defined")
        self._types[definition.name] = definition

    def get(self, name: str) -> JobDefinition | None:
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(list(self._types.values()))

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        return list(self._types)

    def queues(self, settings: Settings) -> list[str]:
        """The queues its types run on, each once, in the order of the types."""
        return list(dict.fromkeys(d.queue_name(settings) for d in self))

    def on_queue(self, settings: Settings, queue: str) -> list[JobDefinition]:
        return [d for d in self if d.queue_name(settings) == queue]

    def merged(self, other: JobRegistry) -> JobRegistry:
        """This registry's types, then `other`'s (a name defined in both is an error)."""
        return JobRegistry([*self, *other])
