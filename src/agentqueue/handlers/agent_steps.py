"""The tool calls of an agent run as durable steps of its job (`engine.steps`), and the calls a
person must approve first (`core.approvals`).

`durable_tools(ctx)` gives `run_agent` a tool runner that records each call (`tool:<name>`,
numbered when repeated, fingerprinted by its arguments) with its result, so a later run of the
job replays a finished call instead of running the tool again: a tool with side effects runs
once however often the job is retried. (The provider calls are steps too: `MeteredProvider`.)
A user's handler that runs its own agent loop gets the same with
`run_agent(..., run_tool=durable_tools(ctx))`.

Given an `ApprovalPolicy`, a call to one of its tools is run only once a person approved it:
the first time, the job parks (see `core.approvals`) and the run ends; the run resumed after
the decision replays every step up to this call and then runs the tool, or tells the model the
call was denied (as the tool's error, so it can continue).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from bullmq.custom_errors import DelayedError

from agentqueue.ai.agent import ToolRunner
from agentqueue.ai.tools.base import ToolRegistry, ToolResult
from agentqueue.ai.types import ToolCall
from agentqueue.context import Context
from agentqueue.core.approvals import AWAITING, ApprovalGate
from agentqueue.engine.steps import StepLog, fingerprint
from agentqueue.engine.worker import PermanentJobError
from agentqueue.timefmt import iso_from_ms

log = logging.getLogger("agentqueue.approvals")

DEFAULT_APPROVAL_TIMEOUT_S = 24 * 3600
OnTimeout = Literal["fail", "deny"]


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which tools need a person's approval, how long to wait, and what the silence means."""

    tools: frozenset[str]
    timeout_s: int = DEFAULT_APPROVAL_TIMEOUT_S
    on_timeout: OnTimeout = "fail"

    def check(self, available: ToolRegistry) -> None:
        """A tool named for approval that the run does not have is a typo: fail at once,
        rather than let a guard silently guard nothing."""
        unknown = sorted(self.tools - set(available.names()))
        if unknown:
            raise PermanentJobError(
                f"requireApproval names tools this agent does not have: {', '.join(unknown)} "
                f"(it has: {', '.join(available.names()) or 'none'})")


def approval_policy(names: list[str] | None, timeout_s: int | None,
                    on_timeout: OnTimeout | None) -> ApprovalPolicy | None:
    """The policy of a job's options (and its agent's); None when no tool needs approval."""
    if not names:
        return None
    return ApprovalPolicy(frozenset(names), timeout_s or DEFAULT_APPROVAL_TIMEOUT_S,
                          on_timeout or "fail")


def durable_tools(ctx: Context, approval: ApprovalPolicy | None = None) -> ToolRunner:
    steps = ctx.ai.steps

    async def run(call: ToolCall, tools: ToolRegistry) -> ToolResult:
        name = steps.name(f"tool:{call.name}")
        asked = fingerprint({"arguments": call.arguments})
        await steps.accept()  # the reply that asked for this call is taken on trust now
        found = await steps.find(name, asked)
        if found is not None:
            return ToolResult(**found["result"])
        extra: dict[str, Any] = {}
        if approval is not None and call.name in approval.tools:
            decided = await _approved(ctx, approval, call, name, asked)
            extra["approval"] = decided
            if decided["decision"] != "approve":
                result = ToolResult(error=_denial(decided))
                await _finish(steps, name, asked, call, result, extra)
                return result
        result = await tools.call(call.name, call.arguments)
        await _finish(steps, name, asked, call, result, extra)
        return result

    return run


async def _finish(steps: StepLog, name: str, asked: str, call: ToolCall, result: ToolResult,
                  extra: dict[str, Any]) -> None:
    await steps.record(name, {"output": result.output, "error": result.error}, kind="tool",
                       asked=asked, tool=call.name, arguments=call.arguments, **extra)


def _denial(decided: dict[str, Any]) -> str:
    if decided.get("by") == "timeout":
        return "nobody approved this call in time; it was not run"
    reason = decided.get("reason")
    return "a person denied this call" + (f": {reason}" if reason else "") + "; it was not run"


async def _approved(ctx: Context, policy: ApprovalPolicy, call: ToolCall, step: str,
                    asked: str) -> dict[str, Any]:
    """The decision on this call; parks the job (never returns) while there is none."""
    gate = ctx.ai.approval_gate
    pending, decision = await gate.read()
    now = round(time.time() * 1000)
    if pending is not None and pending.get("step") == step and pending.get("asked") == asked:
        if decision is not None:
            await gate.clear()
            log.info("Job %s of %r: %s of %s %s", ctx.id, ctx.queue, decision["decision"],
                     call.name, f"by {decision.get('by')}")
            return dict(decision)
        if now >= int(pending["expiresAtMs"]):
            await gate.clear()
            if policy.on_timeout == "deny":
                return {"decision": "deny", "reason": "approval timed out", "by": "timeout",
                        "at": now}
            raise PermanentJobError(
                f"nobody approved the call to tool {call.name!r} within {policy.timeout_s} s "
                f"(onApprovalTimeout: fail)")
        await _park(ctx, gate, pending, requested=False)  # woken early: wait on
    expires = now + policy.timeout_s * 1000
    pending = {
        "tool": call.name, "arguments": call.arguments, "callId": call.id, "step": step,
        "asked": asked, "requestedAt": iso_from_ms(now), "expiresAt": iso_from_ms(expires),
        "expiresAtMs": expires, "onTimeout": policy.on_timeout,
    }
    await _park(ctx, gate, pending, requested=True)
    raise AssertionError("unreachable: parking raises DelayedError")


def shown(pending: dict[str, Any]) -> dict[str, Any]:
    """A pending call as the job's APIs and events show it."""
    return {k: pending[k] for k in ("tool", "arguments", "callId", "requestedAt", "expiresAt",
                                    "onTimeout") if k in pending}


async def _park(ctx: Context, gate: ApprovalGate, pending: dict[str, Any], *,
                requested: bool) -> None:
    """Hold the job, its slot free and no lock held, until a decision or the deadline."""
    if requested:
        await gate.request(pending)
    progress = {"percent": 50, "awaitingApproval": True, "approval": shown(pending)}
    records = ctx.ai.records
    if records is not None:  # before the move: a decision needs the record to say awaiting
        await records.mark(ctx.queue, ctx.id, AWAITING, attempt=ctx.attempt, progress=progress,
                           message=f"awaiting approval of a call to {pending['tool']}")
    await ctx.job.updateProgress(progress)  # the job's events and push subscribers hear it
    await ctx.job.moveToDelayed(int(pending["expiresAtMs"]), str(ctx.job.token))
    # A decision made before the move found no delayed job to promote: promote it now.
    _, decision = await gate.read()
    if decision is not None:
        with contextlib.suppress(TypeError):  # promoted already
            await ctx.job.queue.scripts.promote(ctx.id)
    log.info("Job %s of %r parked: awaiting approval of %s", ctx.id, ctx.queue,
             pending["tool"])
    raise DelayedError("awaiting approval of a tool call")
