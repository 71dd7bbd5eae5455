"""A user's App whose agent has a tool with a side effect (`send_note`: a line in a file) and
one that waits for the test (`wait_for_go`: until a file appears), served by a real
`agentqueue worker tests.support.durable_app:app` the test can SIGKILL between steps.
Files go under DURABLE_TEST_DIR."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import agentqueue
from agentqueue.ai.agent import run_agent
from agentqueue.ai.tools.base import Tool, ToolRegistry
from agentqueue.handlers.agent_steps import durable_tools

app = agentqueue.App()
DIR = Path(os.environ.get("DURABLE_TEST_DIR", "."))


async def send_note(args: dict[str, Any]) -> str:
    def write() -> None:
        with (DIR / "sent.log").open("a") as sent:
            sent.write(f"{args['text']}\n")

    await asyncio.to_thread(write)
    return "sent"


async def wait_for_go(args: dict[str, Any]) -> str:
    await asyncio.to_thread((DIR / "waiting").touch)  # the test kills the worker on it
    # The go-ahead is a file another process makes: polled, there is nothing to wait on.
    while not await asyncio.to_thread((DIR / "go").exists):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return "go"


TOOLS = ToolRegistry([
    Tool("send_note", "Send a note.", {"type": "object", "properties": {
        "text": {"type": "string"}}, "required": ["text"]}, send_note),
    Tool("wait_for_go", "Wait for the go-ahead.", {"type": "object", "properties": {}},
         wait_for_go),
])


class AgentInput(BaseModel):
    message: str


@app.job("durable-agent", queue="jobs", attempts=3, timeout=120)
async def durable_agent(ctx: agentqueue.Context, data: AgentInput) -> dict[str, Any]:
    reply = await run_agent(data.message, [], ctx.ai.provider(), TOOLS,
                            run_tool=durable_tools(ctx))
    return {"response": reply.response, "tools": [s.name for s in reply.steps],
            "attempt": ctx.attempt}
