"""A job type: its name, queue, input model, defaults and handler (made by `JobRegistry.job`,
which `App.job` and the built-in types both use)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.errors import InvalidJobInput

HandlerFn = Callable[[Any, Any], Awaitable[Any]]
BackoffKind = Literal["exponential", "fixed"]
# A queue's name, or how to read it from the settings (the built-in types' queues are settings:
# `queue=lambda s: s.agent_queue_name`), resolved when the type is served or enqueued.
QueueRef = str | Callable[[Settings], str]


def describe(exc: ValidationError) -> str:
    """One line naming each invalid field of a job's data and what is wrong with it."""
    return describe_errors(list(exc.errors())) or "invalid data"


def describe_errors(errors: list[Any]) -> str:
    """As `describe`, for a chosen part of a ValidationError's errors ("" for none)."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in ("data", *error.get("loc", ())))
        text = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            text = "is required"
        elif error.get("type") == "extra_forbidden":
            text = "unknown field"
        parts.append(f"{where}: {text}")
    return "; ".join(parts)


def validation_context(settings: Settings, agents: list[str] | None) -> dict[str, Any]:
    """The run-time facts input models check against (the operator's limits and webhook
    destinations, the agents an agent task may name): the same at enqueue and in the worker."""
    return {"settings": settings, "agents": agents}


@dataclass(frozen=True)
class JobDefinition:
    """A job type."""

    name: str
    queue: QueueRef
    input: type[BaseModel]
    handler: HandlerFn
    attempts: int | None = None
    backoff: BackoffKind | None = None
    backoff_ms: int | None = None
    timeout: float | None = None
    priority: int | None = None  # 0-10, higher runs first (seed 002's scale)
    # How long Redis keeps its finished jobs: the newest N, or for a timedelta (see options.py).
    keep_completed: int | timedelta | None = None
    keep_failed: int | timedelta | None = None

    def queue_name(self, settings: Settings) -> str:
        return self.queue if isinstance(self.queue, str) else self.queue(settings)

    def validate(self, data: Any, context: dict[str, Any] | None = None) -> BaseModel:
        """`data` as the input model, or `InvalidJobInput` naming each wrong field."""
        try:
            return self.input.model_validate(data, context=context)
        except ValidationError as exc:
            raise InvalidJobInput(f"{self.name}: {describe(exc)}") from None

    async def run(self, ctx: JobContext) -> Any:
        """The worker's handler: input checked (a misfit fails at once, no retry), the
        function run, its result made JSON. (Its time limit is the worker's `TimeLimit`
        middleware's: the worker registers it with `timeout_s=self.timeout`.)"""
        context = ctx.validation_context()
        try:
            data = self.input.model_validate(ctx.data or {}, context=context)
        except ValidationError as exc:
            raise PermanentJobError(f"invalid job data: {describe(exc)}") from exc
        result = await self.handler(ctx, data)
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    def backoff_option(self, settings: Settings) -> dict[str, Any] | None:
        """BullMQ's backoff option for jobs of this type; None: its queue's."""
        if self.backoff is None and self.backoff_ms is None:
            return None
        delay = self.backoff_ms
        if delay is None:  # the queue's delay
            from agentqueue.core.queue_profiles import queue_defaults

            delay = queue_defaults(settings, self.queue_name(settings)).backoff_ms
        return {"type": self.backoff or "exponential", "delay": delay}

    def bullmq_priority(self) -> int | None:
        """The type's priority on BullMQ's scale (lower runs first); None: the normal one."""
        return None if self.priority is None else priorities.from_seed002(self.priority)


def input_model(fn: HandlerFn) -> type[BaseModel]:
    """The model annotated on the handler's second parameter (`data: MyInput`)."""
    params = list(inspect.signature(fn).parameters.values())
    hints = typing.get_type_hints(fn) if len(params) >= 2 else {}
    model = hints.get(params[1].name) if len(params) >= 2 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{fn.__qualname__}: annotate its data parameter with a pydantic model "
                        "(async def handler(ctx, data: MyInput)) or pass input=MyInput")
    return model
