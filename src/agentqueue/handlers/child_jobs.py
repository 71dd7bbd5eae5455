"""Jobs a running job submits as its own children (a workflow's steps): recorded, then queued
with the running job as their BullMQ parent, owned by the running job's owner, checked as
`App.enqueue` checks a job (their type's input model and defaults).

A child's id is derived from its parent and a name (`wf-<digest>-<name>`), so submitting it
again (the parent re-run after a crash, or a retry) finds the job already there instead of
queueing a second one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from agentqueue.context import Context
from agentqueue.core.queue_profiles import queue_defaults
from agentqueue.core.submission import Accepted, JobSubmitter
from agentqueue.definition import JobDefinition
from agentqueue.engine.queue import JobQueue
from agentqueue.engine.worker import PermanentJobError
from agentqueue.options import plan
from agentqueue.records.views import JobOwner

_SUBMITTER = "child-jobs.submitter"


def child_id(ctx: Context, name: str, round_: int = 0) -> str:
    """The id of child `name` in the parent's `round_` (a parent retried by hand after it
    failed submits what failed again under new ids: round 1, 2, …)."""
    # The parent's creation time too: a queue's ids start again at 1 on a new Redis, while the
    # records (and with them the children's ids) remain.
    parent = f"{ctx.queue}:{ctx.id}:{ctx.job.timestamp}"
    digest = hashlib.sha1(parent.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"wf-{digest}-{name}" if not round_ else f"wf-{digest}-r{round_}-{name}"


def _round_key(ctx: Context) -> str:
    return f"agentqueue:{ctx.settings.queue_prefix}:wf-round:{ctx.queue}:{ctx.id}"


ROUND_TTL_S = 30 * 24 * 3600


async def current_round(ctx: Context) -> int:
    return int(await ctx._resources().runtime.client.get(_round_key(ctx)) or 0)


async def next_round(ctx: Context) -> None:
    """The parent failed: if it is run again (retried by hand), what failed runs again."""
    client = ctx._resources().runtime.client
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr(_round_key(ctx))
        pipe.expire(_round_key(ctx), ROUND_TTL_S)
        await pipe.execute()


def owned(data: dict[str, Any], owner: JobOwner | None) -> dict[str, Any]:
    """`data` with the owner fields it names set to `owner`'s (as the APIs do for a caller)."""
    if "userId" in data:
        data["userId"] = owner.user_id if owner else None
    if "organizationId" in data:
        if owner is None or owner.org_id is None:
            del data["organizationId"]
        else:
            data["organizationId"] = owner.org_id
    return data


class ChildSubmitter:
    """A submitter over the worker's Redis and records, opening queues as children need them."""

    def __init__(self, ctx: Context) -> None:
        runtime = ctx._resources().runtime
        if runtime.records is None:
            raise PermanentJobError("child jobs need the job records (this worker has none)")
        self.settings = ctx.settings
        self.client = runtime.client
        self.queues: dict[str, JobQueue] = {}
        self.submitter = JobSubmitter(self.queues, runtime.records,
                                      lease_s=self.settings.submit_lease_s)

    def queue(self, name: str) -> JobQueue:
        if name not in self.queues:
            self.queues[name] = JobQueue(name, self.client, prefix=self.settings.queue_prefix,
                                         defaults=queue_defaults(self.settings, name))
        return self.queues[name]

    async def submit(self, ctx: Context, definition: JobDefinition, data: dict[str, Any],
                     name: str, owner: JobOwner | None, round_: int = 0) -> Accepted:
        """Record and queue a child of `ctx`'s job (once: see the module's docs). Bad data
        raises `InvalidJobInput`."""
        queue = definition.queue_name(self.settings)
        planned = plan(definition, owned(dict(data), owner),
                       {"owner": owner} if owner is not None else {},
                       queue=queue,
                       queue_backoff_ms=queue_defaults(self.settings, queue).backoff_ms,
                       validation_context=ctx.validation_context())
        self.queue(queue)
        submission = planned.submission()
        submission["job_id"] = child_id(ctx, name, round_)
        submission["options"] = {
            **submission["options"],
            "parent": {"id": ctx.id, "queue": f"{self.settings.queue_prefix}:{ctx.queue}"},
            # The parent decides what a child's failure means (it reads the failures).
            "ignoreDependencyOnFailure": True,
        }
        return await self.submitter.accept(**submission)

    async def aclose(self) -> None:
        for queue in self.queues.values():
            await queue.close()


def child_submitter(ctx: Context) -> ChildSubmitter:
    """The worker's one `ChildSubmitter` (closed with the worker)."""

    async def close(submitter: ChildSubmitter) -> None:
        await submitter.aclose()

    return ctx.shared(_SUBMITTER, lambda: ChildSubmitter(ctx), close)


async def wait_for_children(ctx: Context) -> bool:
    """Park the job until its children have finished (BullMQ's `moveToWaitingChildren`):
    True if it now waits (raise `WaitingChildrenError`, the worker lets go of it); False if
    none is left to wait for (all finished meanwhile: look again)."""
    return bool(await ctx.job.moveToWaitingChildren(str(ctx.job.token), {}))
