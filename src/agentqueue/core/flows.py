"""Flows: a parent job that runs once its children have finished (the bullmq package's
`FlowProducer`, on any number of queues, in one transaction).

Every node gets a record before the flow is in Redis, as a single job does (`submission`): ids
are reserved from each queue's BullMQ counter, the records are written `queued` under a
submission lease, then the whole tree is added at once (`JobQueue.add_flow`, all or none), then
the leases end. A parent's record stays `queued` while it waits for its children (BullMQ's
`waiting-children` state); the worker moves it on when it runs it.

What a child's failure (once it has spent its attempts) does to its parent, per child
(`on_failure`):
- "fail" (the default; BullMQ's `failParentOnFailure`): the parent fails too, without running,
  with the reason `child <prefix>:<queue>:<id> failed`. (BullMQ's own default instead leaves
  the parent waiting for good, which in a service reads as a hung job.)
- "ignore" (`ignoreDependencyOnFailure`): the parent runs once the other children are done;
  `ctx.children_failures()` tells it which failed and why.
- "wait" (BullMQ's default): the parent waits until the child is replayed and completes (a dead
  letter replayed by hand, say).

A parent's handler reads its children's results with `await ctx.children_results()`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from agentqueue.core import priority as priorities
from agentqueue.core.submission import JobSubmitter, NotQueued
from agentqueue.engine.connection import watch_sends
from agentqueue.records.views import JobOwner, JobRecordView

log = logging.getLogger("agentqueue.submission")

OnFailure = Literal["fail", "ignore", "wait"]
ON_FAILURE_OPTION: dict[str, dict[str, bool]] = {
    "fail": {"failParentOnFailure": True},
    "ignore": {"ignoreDependencyOnFailure": True},
    "wait": {},
}
MAX_FLOW_NODES = 1000


@dataclass
class FlowNode:
    """One job of a flow, checked: what `JobSubmitter.accept` takes, plus its children and what
    its failure does to its parent."""

    queue: str
    name: str
    data: dict[str, Any]
    owner: JobOwner
    priority: int | None = None  # BullMQ's (1 runs first); None: the normal one
    attempts: int | None = None
    backoff: dict[str, Any] | None = None
    delay_ms: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # further BullMQ job options
    title: str | None = None
    description: str | None = None
    on_failure: OnFailure = "fail"
    children: list[FlowNode] = field(default_factory=list)

    def walk(self) -> list[FlowNode]:
        """This node and all below it, parents before their children."""
        return [self, *(n for child in self.children for n in child.walk())]


@dataclass
class AcceptedFlow:
    """The jobs of an accepted flow, as a tree: this node's, then its children's."""

    queue: str
    job_id: str
    record: JobRecordView
    children: list[AcceptedFlow] = field(default_factory=list)


def count_nodes(node: FlowNode) -> int:
    return len(node.walk())


async def submit_flow(submitter: JobSubmitter, root: FlowNode) -> AcceptedFlow:
    """Record every node of the flow, then queue the whole tree in one transaction."""
    nodes = root.walk()
    if len(nodes) > MAX_FLOW_NODES:
        raise ValueError(f"a flow has at most {MAX_FLOW_NODES} jobs, not {len(nodes)}")
    for node in nodes:
        submitter.queue(node.queue)  # UnknownQueue before anything is written
    if submitter.limits is not None:
        checks = {(n.queue, n.owner.user_id, n.owner.org_id): n for n in nodes}
        for node in checks.values():
            await submitter.limits.check(node.queue, node.owner)
    records: dict[int, JobRecordView] = {}
    try:
        for node in nodes:
            records[id(node)] = await _record(submitter, node)
    except BaseException:
        await _forget(submitter, list(records.values()))
        raise
    tree = _bull_tree(submitter, root, records, parent=None)
    jobs = submitter.queue(root.queue)
    with watch_sends(jobs.client) as watch:
        try:
            await jobs.add_flow(tree)
        except Exception as exc:
            if not watch.may_have_sent:
                await _forget(submitter, list(records.values()))
                raise NotQueued(f"flow of job {records[id(root)].job_id} of {root.queue!r} "
                                "was not queued") from exc
            # It may be in Redis (all of it: one transaction). The leases run out and the
            # repair service settles each record from Redis.
            log.warning("Flow of job %s of %r may not have reached Redis (%s)",
                        records[id(root)].job_id, root.queue, type(exc).__name__)
            return _accepted(root, records)
    await _give_back_ids(submitter, list(records.values()))
    for record in records.values():
        assert record.submitting_until is not None
        try:
            await submitter.records.end_lease(record.queue, record.job_id,
                                              record.submitting_until)
        except Exception as exc:  # queued all the same: the lease runs out by itself
            log.warning("Could not end the submission lease of job %s of %r (%s)",
                        record.job_id, record.queue, type(exc).__name__)
    return _accepted(root, records)


async def _record(submitter: JobSubmitter, node: FlowNode) -> JobRecordView:
    jobs = submitter.queue(node.queue)
    create = functools.partial(
        submitter.records.create_job, queue=node.queue, type=node.name, data=node.data,
        owner=node.owner, name=node.title, description=node.description,
        max_attempts=node.attempts or jobs.defaults.attempts,
        priority=priorities.from_bullmq(node.priority), status="queued",
        passed_through=("pending",),
        message=f"waiting for {len(node.children)} child job(s)" if node.children else None)
    return await submitter._create_numbered(jobs, create)


def _bull_tree(submitter: JobSubmitter, node: FlowNode, records: dict[int, JobRecordView],
               parent: FlowNode | None) -> dict[str, Any]:
    """The node as `FlowProducer.add` takes it, with the queue's defaults, its reserved id and
    what its failure does to its parent."""
    jobs = submitter.queue(node.queue)
    opts: dict[str, Any] = {**jobs.defaults.job_options(), **node.options,
                            "jobId": records[id(node)].job_id,
                            "priority": priorities.from_bullmq(node.priority)}
    if node.attempts:
        opts["attempts"] = node.attempts
    if node.backoff:
        opts["backoff"] = node.backoff
    if node.delay_ms:
        opts["delay"] = node.delay_ms
    if parent is not None:
        opts.update(ON_FAILURE_OPTION[node.on_failure])
    tree: dict[str, Any] = {"name": node.name, "queueName": node.queue, "data": node.data,
                            "opts": opts}
    if node.children:
        tree["children"] = [_bull_tree(submitter, child, records, node)
                            for child in node.children]
    return tree


async def _give_back_ids(submitter: JobSubmitter, records: list[JobRecordView]) -> None:
    """BullMQ's add script counts every add, reserved id or not: give those counts back, so a
    queue's ids stay 1, 2, 3… (as `JobQueue.add_reserved` does for one job)."""
    by_queue: dict[str, list[int]] = {}
    for record in records:
        by_queue.setdefault(record.queue, []).append(int(record.job_id))
    for queue, ids in by_queue.items():
        # The flow is queued all the same if this fails: a gap in the ids is harmless.
        with contextlib.suppress(Exception):
            await submitter.queue(queue).give_back_ids(max(ids), len(ids))


def _accepted(node: FlowNode, records: dict[int, JobRecordView]) -> AcceptedFlow:
    record = records[id(node)]
    return AcceptedFlow(record.queue, record.job_id,
                        record.model_copy(update={"submitting_until": None}),
                        [_accepted(child, records) for child in node.children])


async def _forget(submitter: JobSubmitter, records: list[JobRecordView]) -> None:
    for record in records:
        await submitter._forget(record, record.version)
