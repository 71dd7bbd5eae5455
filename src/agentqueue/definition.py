"""A job type defined with `App.job`: its name, queue, input model, defaults and handler."""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agentqueue import catalog
from agentqueue.config import Settings
from agentqueue.core import priority as priorities
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.errors import InvalidJobInput

HandlerFn = Callable[[JobContext, Any], Awaitable[Any]]
BackoffKind = Literal["exponential", "fixed"]


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
    # How long Redis keeps its finished jobs: the newest N, or for a timedelta (see options.py).
    keep_completed: int | timedelta | None = None
    keep_failed: int | timedelta | None = None

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
        # The job's own timeout (`enqueue(timeout=…)`, stored in ms as Bull 3 did), else the type's.
        job_timeout_ms = (ctx.job.opts or {}).get("timeout")
        timeout = job_timeout_ms / 1000 if job_timeout_ms else self.timeout
        if timeout is None:
            result = await self.handler(ctx, data)
        else:
            limit = asyncio.timeout(timeout)
            try:
                async with limit:
                    result = await self.handler(ctx, data)
            except TimeoutError as exc:
                if not limit.expired():
                    raise  # the handler's own: its message stands
                raise TimeoutError(f"job timed out after {timeout:g}s") from exc
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


def input_model(fn: HandlerFn) -> type[BaseModel]:
    """The model annotated on the handler's second parameter (`data: MyInput`)."""
    params = list(inspect.signature(fn).parameters.values())
    hints = typing.get_type_hints(fn) if len(params) >= 2 else {}
    model = hints.get(params[1].name) if len(params) >= 2 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{fn.__qualname__}: annotate its data parameter with a pydantic model "
                        "(async def handler(ctx, data: MyInput)) or pass input=MyInput")
    return model
