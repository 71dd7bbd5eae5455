"""The tool calls of an agent run as durable steps of its job (`engine.steps`).

`durable_tools(ctx)` gives `run_agent` a tool runner that records each call (`tool:<name>`,
numbered when repeated, fingerprinted by its arguments) with its result, so a later run of the
job replays a finished call instead of running the tool again: a tool with side effects runs
once however often the job is retried. (The provider calls are steps too: `MeteredProvider`.)
A user's handler that runs its own agent loop gets the same with
`run_agent(..., run_tool=durable_tools(ctx))`.
"""

from __future__ import annotations

from agentqueue.ai.agent import ToolRunner
from agentqueue.ai.tools.base import ToolRegistry, ToolResult
from agentqueue.ai.types import ToolCall
from agentqueue.context import Context
from agentqueue.engine.steps import fingerprint


def durable_tools(ctx: Context) -> ToolRunner:
    steps = ctx.ai.steps

    async def run(call: ToolCall, tools: ToolRegistry) -> ToolResult:
        name = steps.name(f"tool:{call.name}")
        asked = fingerprint({"arguments": call.arguments})
        await steps.accept()  # the reply that asked for this call is taken on trust now
        found = await steps.find(name, asked)
        if found is not None:
            return ToolResult(**found["result"])
        result = await tools.call(call.name, call.arguments)
        await steps.record(name, {"output": result.output, "error": result.error}, kind="tool",
                           asked=asked, tool=call.name, arguments=call.arguments)
        return result

    return run
