"""Seed 001's `workflow-execution` job type: a workflow's steps run as child jobs of the
workflow's job, on BullMQ's flows (see `workflow_model` for the definition and references).

Each run of the handler looks at where the steps stand (its children's results and failures,
BullMQ's own), queues every step whose dependencies have all completed (each a job of its type,
on that type's queue, owned by the workflow's owner), then parks the workflow in BullMQ's
`waiting-children` state; BullMQ moves it back to the queue when those children have finished,
and the handler runs again. No worker slot is held while steps run, so a workflow cannot
starve its own steps. A step is queued once however often the handler runs (its job id is
derived from the workflow's: `child_jobs`).

A failed step (its attempts spent) with `onFailure: "fail"` fails the workflow, naming the
step (its log lists where every step stood); with `"skip"` the workflow goes on, and the steps
that need it are skipped. A step whose references lead nowhere, or whose filled-in input its
type refuses, fails the same way without being queued. The result lists every step: status,
job id, result or error. Cancelling the workflow queues no further step: it is cancelled when
it next wakes (the worker's cancellation middleware remembers the request). A failed workflow
retried (`POST /api/jobs/{id}/retry`) runs its failed and not yet run steps again and keeps the
results of those that completed.
"""

from __future__ import annotations

from typing import Any

from bullmq.custom_errors import WaitingChildrenError

from agentqueue.context import Context
from agentqueue.engine.worker import PermanentJobError
from agentqueue.errors import InvalidJobInput
from agentqueue.handlers.builtin import jobs_queue
from agentqueue.handlers.child_jobs import (
    child_id,
    child_submitter,
    current_round,
    next_round,
    wait_for_children,
)
from agentqueue.handlers.workflow_model import (
    WORKFLOW_EXECUTION,
    MissingValue,
    Step,
    WorkflowInput,
    resolve,
)
from agentqueue.registry import JobRegistry

jobs = JobRegistry()

DONE = ("completed", "failed", "skipped")
# Passes of one run before giving up on waiting (steps finishing as fast as they are queued).
_MAX_PASSES = 1000


class StepState:
    def __init__(self, step: Step, job_ref: str | None) -> None:
        self.step = step
        self.job_ref = job_ref  # `<queue>:<id>`, once known
        self.status = "pending"
        self.result: Any = None
        self.error: str | None = None

    def out(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "type": self.step.type,
                               "jobId": self.job_ref}
        if self.status == "completed":
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        if self.status in ("failed", "skipped") and self.step.onFailure == "skip":
            out["onFailure"] = "skip"
        return out


async def _look(ctx: Context, data: WorkflowInput, round_: int) -> dict[str, StepState]:
    """Where each step stands, from the workflow job's children (BullMQ's hashes): completed in
    any round, failed in this one (a failure of an earlier round runs again)."""
    from agentqueue.serving import served

    types = served()
    results = await ctx.children_results()
    failures = await ctx.children_failures()
    states: dict[str, StepState] = {}
    for step in data.workflow.order():
        definition = types.get(step.type)
        queue = definition.queue_name(ctx.settings) if definition else None
        state = states[step.id] = StepState(step, None)
        refs = [f"{queue}:{child_id(ctx, step.id, r)}" for r in range(round_, -1, -1)]
        done = next((ref for ref in refs if ref in results), None)
        if done is not None:
            state.status, state.result, state.job_ref = "completed", results[done], done
        elif refs[0] in failures:
            state.status, state.error, state.job_ref = "failed", failures[refs[0]], refs[0]
    return states


def _blocked_by(state: StepState, states: dict[str, StepState]) -> StepState | None:
    """A dependency that failed (skipped) or was skipped, so this step cannot run."""
    for need in state.step.needs():
        if states[need].status in ("failed", "skipped"):
            return states[need]
    return None


def _scope(data: WorkflowInput, states: dict[str, StepState]) -> dict[str, Any]:
    return {"input": data.input,
            "steps": {i: {"result": s.result} for i, s in states.items()
                      if s.status == "completed"}}


def _fatal(states: dict[str, StepState]) -> StepState | None:
    return next((s for s in states.values()
                 if s.status == "failed" and s.step.onFailure == "fail"), None)


async def _queue_ready(ctx: Context, data: WorkflowInput, states: dict[str, StepState],
                       round_: int) -> int:
    """Settle the steps that cannot run, queue those that can; how many are in flight."""
    from agentqueue.serving import served

    types = served()
    owner = await ctx.owner()
    submitter = child_submitter(ctx)
    in_flight = 0
    for state in states.values():  # in dependency order: a skip reaches what follows
        if state.status != "pending":
            continue
        blocker = _blocked_by(state, states)
        if blocker is not None:
            state.status = "skipped"
            state.error = f"step {blocker.step.id!r} {blocker.status}"
            continue
        if any(states[n].status != "completed" for n in state.step.needs()):
            continue  # waits for a step still pending or running
        definition = types.get(state.step.type)
        if definition is None:
            state.status, state.error = "failed", f"unknown job type {state.step.type!r}"
            continue
        try:
            step_data = resolve(state.step.input, _scope(data, states))
            accepted = await submitter.submit(ctx, definition, step_data, state.step.id, owner,
                                              round_)
        except (MissingValue, InvalidJobInput) as exc:
            state.status, state.error = "failed", str(exc)
            continue
        state.job_ref = f"{accepted.queue}:{accepted.job_id}"
        state.status = "running"
        in_flight += 1
    return in_flight


async def _progress(ctx: Context, states: dict[str, StepState]) -> None:
    done = [s for s in states.values() if s.status in DONE]
    running = [s.step.id for s in states.values() if s.status == "running"]
    message = f"{len(done)} of {len(states)} steps done"
    if running:
        message += f"; running: {', '.join(running)}"
    await ctx.progress(current=len(done), total=len(states), message=message)


@jobs.job(WORKFLOW_EXECUTION, queue=jobs_queue, attempts=3)
async def workflow_execution(ctx: Context, data: WorkflowInput) -> dict[str, Any]:
    round_ = await current_round(ctx)
    for _ in range(_MAX_PASSES):
        states = await _look(ctx, data, round_)
        if (fatal := _fatal(states)) is None:
            in_flight = await _queue_ready(ctx, data, states, round_)
            fatal = _fatal(states)
        if fatal is not None:
            await _progress(ctx, states)
            # A failed job has no result: where every step stood goes to its log.
            await ctx.log("steps: " + ", ".join(
                f"{i} {s.status}" + (f" ({s.job_ref})" if s.job_ref else "")
                for i, s in states.items()))
            await next_round(ctx)
            raise PermanentJobError(f"step {fatal.step.id!r} ({fatal.step.type}) failed: "
                                    f"{fatal.error}")
        await _progress(ctx, states)
        if not in_flight:
            break
        if await wait_for_children(ctx):
            raise WaitingChildrenError()
    else:
        raise RuntimeError("the workflow's steps did not settle")  # retried: a new look
    return {
        "workflow": data.workflow.name,
        "status": "completed",
        "steps": {step.id: states[step.id].out() for step in data.workflow.steps},
        "completed": sum(s.status == "completed" for s in states.values()),
        "failed": sum(s.status == "failed" for s in states.values()),
        "skipped": sum(s.status == "skipped" for s in states.values()),
    }
