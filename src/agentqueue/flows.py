"""Flows in the Python API: a parent job that runs once its children have finished.

    flow = agentqueue.Flow("report", {"title": "Q3"}, children=[
        agentqueue.Flow("fetch", {"source": "sales"}),
        agentqueue.Flow("fetch", {"source": "costs"}, on_failure="ignore"),
    ])
    run = await app.enqueue_flow(flow)
    report = await run.job.wait(timeout=60)

    @app.job("report")
    async def report(ctx, data):
        results = await ctx.children_results()   # {"jobs:2": {...}, "jobs:3": {...}}

Each node is a job type with its data and `enqueue` options (`job_id` and deduplication aside:
a flow's jobs are new jobs; a child without an `owner` is its parent's), checked as `enqueue`
checks them, all before anything is queued; children may be on other queues. `on_failure`
says what the node's failure does to its parent: "fail" (the default), "ignore" or "wait"
(see `agentqueue.core.flows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentqueue.core.flows import ON_FAILURE_OPTION, AcceptedFlow, FlowNode, OnFailure
from agentqueue.handle import Job
from agentqueue.options import EnqueueOptions

if TYPE_CHECKING:
    from agentqueue.app import App

_NOT_IN_FLOWS = ("job_id", "dedup_key", "dedup_ttl_ms")


@dataclass
class Flow:
    """One job of a flow and, below it, the jobs it waits for."""

    name: str
    data: BaseModel | dict[str, Any] = field(default_factory=dict)
    children: Sequence[Flow] = ()
    options: EnqueueOptions = field(default_factory=lambda: EnqueueOptions())
    on_failure: OnFailure = "fail"


@dataclass
class FlowRun:
    """Handles on an enqueued flow's jobs: this node's `job`, then its `children`'s."""

    job: Job
    children: list[FlowRun]

    def jobs(self) -> list[Job]:
        """Every job of the flow, parents before their children."""
        return [self.job, *(job for child in self.children for job in child.jobs())]


def plan_flow(app: App, flow: Flow, *, path: str = "flow",
              owner: Any = None) -> FlowNode:
    """The flow checked, node by node (errors name the node: `flow.children[1]: …`). A child
    without an `owner` of its own belongs to its parent's."""
    if flow.on_failure not in ON_FAILURE_OPTION:
        raise ValueError(f"{path}: on_failure is 'fail', 'ignore' or 'wait', not "
                         f"{flow.on_failure!r}")
    refused = [name for name in _NOT_IN_FLOWS if name in flow.options]
    if refused:
        raise ValueError(f"{path}: {', '.join(refused)} cannot be set on a flow's job")
    try:
        options = flow.options
        if owner is not None and "owner" not in options:
            options = EnqueueOptions(**options, owner=owner)
        planned = app._plan(flow.name, flow.data, options)
    except (TypeError, ValueError) as exc:
        exc.args = (f"{path}: {exc}",)
        raise
    return FlowNode(
        queue=planned.queue, name=planned.name, data=planned.data, owner=planned.owner,
        priority=planned.priority, attempts=planned.attempts, backoff=planned.backoff,
        delay_ms=planned.delay_ms, options=planned.options, on_failure=flow.on_failure,
        children=[plan_flow(app, child, path=f"{path}.children[{i}]", owner=planned.owner)
                  for i, child in enumerate(flow.children)])


def handles(app: App, accepted: AcceptedFlow) -> FlowRun:
    return FlowRun(Job(app, accepted.queue, accepted.job_id),
                   [handles(app, child) for child in accepted.children])
