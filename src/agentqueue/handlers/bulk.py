"""Seed 001's `bulk-operation` job type: one job type applied to many items (up to 10,000), in
chunks, inside the bulk job.

Each item runs the type's own handler in this job (not as a job of its own): thousands of child
jobs would mean thousands of records, Redis jobs and round trips for what is one operation, and
a bulk job's items rarely need their own retries; a failed item is listed in the result (its
index and error) and the others go on. Items of a chunk run `concurrency` at a time; after each
chunk its outcomes are kept in Redis (a checkpoint), so a bulk job re-run after its worker died
or retried goes on from the next chunk instead of running the done ones again, and progress
says how many items are done. Cancelling the bulk job stops it where it is: the items not yet
started never run (those running are cancelled with it).

The items share the bulk job's identity: its owner (their handlers' `ctx.owner()`), its usage
meter (tokens and cost add up on the bulk job), its log (lines prefixed with the item's index).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from agentqueue.context import Context
from agentqueue.definition import JobDefinition, describe
from agentqueue.engine.worker import PermanentJobError
from agentqueue.handlers.builtin import jobs_queue
from agentqueue.handlers.workflow_model import BULK_OPERATION, WORKFLOW_EXECUTION
from agentqueue.registry import JobRegistry

jobs = JobRegistry()

MAX_ITEMS = 10_000
NOT_AN_ITEM = (BULK_OPERATION, WORKFLOW_EXECUTION)
# Long enough for a retry after a backoff; not deleted at the end, so a bulk job whose result
# failed to store after its last chunk still finds its outcomes when run again.
CHECKPOINT_TTL_S = 24 * 3600
_SHOWN_INVALID = 5


class BulkInput(BaseModel):
    """A `bulk-operation` job: `jobType` applied to each of `items` (each merged over `common`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    jobType: str = Field(min_length=1, max_length=200, description="the job type each item is")
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS,
                                        description="each item's data for that type")
    common: dict[str, Any] = Field(default_factory=dict,
                                   description="data every item shares (an item's own wins)")
    chunkSize: int = Field(100, ge=1, le=1000, description="items per chunk (checkpoint)")
    concurrency: int = Field(4, ge=1, le=32, description="items of a chunk run at once")
    keepResults: bool = Field(True, description="false: the result lists failures only")
    userId: str | None = Field(None, max_length=200)
    organizationId: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _items_fit_the_type(self, info: ValidationInfo) -> BulkInput:
        definition = item_type(self.jobType)
        invalid = []
        for index, item in enumerate(self.items):
            try:
                definition.input.model_validate({**self.common, **item}, context=info.context)
            except ValidationError as exc:
                invalid.append(f"items[{index}]: {describe(exc)}")
        if invalid:
            more = len(invalid) - _SHOWN_INVALID
            shown = "; ".join(invalid[:_SHOWN_INVALID]) + (f"; and {more} more" if more > 0
                                                            else "")
            raise ValueError(f"{len(invalid)} item(s) do not fit {self.jobType!r}: {shown}")
        return self


def item_type(name: str) -> JobDefinition:
    """The type the items are (ValueError naming the known ones otherwise)."""
    from agentqueue.serving import served

    types = served()
    definition = types.get(name)
    if definition is None or name in NOT_AN_ITEM:
        known = ", ".join(n for n in types.names() if n not in NOT_AN_ITEM)
        raise ValueError(f"jobType: unknown job type {name!r}; known: {known}")
    return definition


class ItemContext:
    """The bulk job's context as one item's handler sees it: the item's data and an id of its
    own (`<bulk job id>:<index>`); its progress folded into the bulk job's (not reported on its
    own); everything else the bulk job's."""

    def __init__(self, ctx: Context, index: int, data: dict[str, Any]) -> None:
        self._ctx = ctx
        self.index = index
        self._data = data

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    @property
    def id(self) -> str:
        # What handlers key their once-only writes by (a reply appended to a conversation, a
        # webhook's delivery id): one per item, as `batch` keys its messages.
        return f"{self._ctx.id}:{self.index}"

    async def progress(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def log(self, line: str) -> None:
        await self._ctx.log(f"item {self.index}: {line}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _checkpoint_key(ctx: Context) -> str:
    return f"agentqueue:{ctx.settings.queue_prefix}:bulk:{ctx.queue}:{ctx.id}"


async def _run_item(ctx: Context, definition: JobDefinition, data: BulkInput, index: int,
                    gate: asyncio.Semaphore) -> list[Any]:
    """[True, result] or [False, error]: an item's failure is its own, not the bulk job's."""
    item = {**data.common, **data.items[index]}
    async with gate:
        try:
            model = definition.input.model_validate(item, context=ctx.validation_context())
            result = await definition.handler(ItemContext(ctx, index, item), model)
        except Exception as exc:  # noqa: BLE001 - any failure is the item's outcome
            return [False, str(exc) or type(exc).__name__]
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return [True, result]


# An hour by default (JOB_TIMEOUT_SECONDS is for one job's worth of work; the job's `timeout`
# option overrides it); a bulk job stopped by it goes on from its checkpoint when retried.
@jobs.job(BULK_OPERATION, queue=jobs_queue, attempts=3, timeout=3600)
async def bulk_operation(ctx: Context, data: BulkInput) -> dict[str, Any]:
    try:
        definition = item_type(data.jobType)
    except ValueError as exc:  # no longer served here
        raise PermanentJobError(str(exc)) from None
    client = ctx._resources().runtime.client
    key = _checkpoint_key(ctx)
    done: dict[int, list[list[Any]]] = {
        int(chunk): json.loads(outcomes) for chunk, outcomes in (await client.hgetall(key)).items()}
    total = len(data.items)
    size = data.chunkSize
    chunks = range((total + size - 1) // size)
    gate = asyncio.Semaphore(data.concurrency)
    finished = sum(len(done[c]) for c in done)
    for chunk in chunks:
        if chunk in done:
            continue
        indexes = range(chunk * size, min(total, (chunk + 1) * size))
        outcomes = await asyncio.gather(*(_run_item(ctx, definition, data, i, gate)
                                          for i in indexes))
        done[chunk] = list(outcomes)
        try:
            encoded = json.dumps(done[chunk])
        except (TypeError, ValueError):  # a result JSON cannot hold: not kept, run again
            encoded = None
        if encoded is not None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(key, str(chunk), encoded)
                pipe.expire(key, CHECKPOINT_TTL_S)
                await pipe.execute()
        finished += len(indexes)
        await ctx.progress(current=finished, total=total,
                           message=f"Processing item {finished} of {total}")
    outcomes = [outcome for chunk in chunks for outcome in done[chunk]]
    failures = [{"index": i, "error": o[1]} for i, o in enumerate(outcomes) if not o[0]]
    result: dict[str, Any] = {
        "jobType": data.jobType, "total": total, "succeeded": total - len(failures),
        "failed": len(failures), "failures": failures,
    }
    if data.keepResults:
        result["results"] = [o[1] if o[0] else None for o in outcomes]
    return result
