"""`chat` and `batch` jobs of the agent chat queue (seed 000): run the agent, report progress.

Defined on the built-in registry, as a user defines a job type."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ValidationError

from agentqueue.ai.agent import run_agent
from agentqueue.ai.providers.base import Provider
from agentqueue.ai.types import AgentReply, AgentStep, ChatMessage
from agentqueue.context import Context
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.handlers.agent_steps import ApprovalPolicy, approval_policy, durable_tools
from agentqueue.handlers.ai_runtime import guarded, usage_fields
from agentqueue.handlers.builtin import agent_queue
from agentqueue.handlers.inputs import BatchInput, ChatInput
from agentqueue.handlers.sessions import new_session_id
from agentqueue.handlers.streaming import TextProgress
from agentqueue.records.views import JobOwner
from agentqueue.registry import JobRegistry
from agentqueue.timefmt import iso_now

# Named as the seed's log lines show it: "[AgentQueueProcessor] Processing job 1 for message: …"
log = logging.getLogger("AgentQueueProcessor")

CHAT = "chat"
BATCH = "batch"

# The types this module defines, as a user defines theirs (see handlers.builtin).
jobs = JobRegistry()


def _history(raw: Any) -> list[ChatMessage]:
    if raw is None:
        return []
    try:
        return [ChatMessage.model_validate(item) for item in raw]
    except (ValidationError, TypeError) as exc:
        raise PermanentJobError(f"invalid conversationHistory: {exc}") from exc


def _preview(message: str, limit: int = 80) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _reply_fields(reply: AgentReply) -> dict[str, Any]:
    return {
        "provider": reply.provider,
        "model": reply.model,
        "toolCalls": [
            {"tool": s.name, "arguments": s.arguments, "output": s.output, "error": s.error}
            for s in reply.steps
        ],
    }


async def _answer(
    ctx: Context,
    provider: Provider,
    item: dict[str, Any],
    owner: JobOwner | None,
    session_id: str,
    exchange_id: str,
    stream: ChatProgress | None = None,
    approval: ApprovalPolicy | None = None,
) -> AgentReply:
    ai = ctx.ai
    message = item.get("message", "")
    if not isinstance(message, str) or not message.strip():
        raise PermanentJobError("message must be a non-empty string")
    history_raw = item.get("conversationHistory")
    # Explicit history wins; otherwise the session remembers earlier turns (its owner's
    # session of that id: someone else's id is a new, empty session).
    history = (
        _history(history_raw)
        if history_raw is not None
        else _history(await ai.sessions.history(owner, session_id))
    )
    if approval is not None:
        approval.check(ai.tools)
    reply = await guarded(run_agent(
        message, history, provider, ai.tools,
        max_steps=ai.max_agent_steps,
        on_step=stream.step if stream else None,
        on_text=stream,
        model=item.get("model"),
        run_tool=durable_tools(ctx, approval),
    ))
    await ai.sessions.append_once(
        owner, session_id, exchange_id,
        {"role": "user", "content": message},
        {"role": "assistant", "content": reply.response},
    )
    return reply


@jobs.job(CHAT, queue=agent_queue)
async def chat(ctx: Context, data: ChatInput) -> dict[str, Any]:
    raw = ctx.data or {}
    message = data.message
    session_id = data.sessionId or new_session_id()
    log.info('Processing job %s for message: "%s"', ctx.id, _preview(message))
    started = time.monotonic()
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    stream = ChatProgress(ctx)
    owner = await ctx.owner()
    approval = approval_policy(data.requireApproval, data.approvalTimeout,
                               data.onApprovalTimeout)
    reply = await _answer(ctx, provider, raw, owner, session_id, ctx.id, stream, approval)
    await stream.close()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    await ctx.progress(100)
    log.info("Job %s completed in %dms", ctx.id, elapsed_ms)
    return {
        "response": reply.response,
        "sessionId": session_id,
        "processingTime": elapsed_ms,
        "timestamp": iso_now(),
        **_reply_fields(reply),
        **usage_fields(await ctx.usage()),
    }


@jobs.job(BATCH, queue=agent_queue)
async def batch(ctx: Context, data: BatchInput) -> dict[str, Any]:
    raw = ctx.data or {}
    items = raw["messages"]
    log.info("Processing job %s: batch of %d messages", ctx.id, len(items))
    started = time.monotonic()
    provider = ctx.ai.provider(data.provider)
    owner = await ctx.owner()
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        item = item if isinstance(item, dict) else {"message": item}
        item.setdefault("model", raw.get("model"))
        session_id = item.get("sessionId") or new_session_id()
        item_started = time.monotonic()
        try:
            reply = await _answer(ctx, provider, item, owner, session_id, f"{ctx.id}:{index}")
            results.append({
                "index": index,
                "success": True,
                "message": item.get("message"),
                "response": reply.response,
                "sessionId": session_id,
                "processingTime": int((time.monotonic() - item_started) * 1000),
                **_reply_fields(reply),
            })
        except Exception as exc:  # one failing message must not lose the others
            log.warning("Job %s message %d failed: %s", ctx.id, index, exc)
            results.append({
                "index": index,
                "success": False,
                "message": item.get("message"),
                "sessionId": session_id,
                "error": str(exc),
            })
        await ctx.progress(round((index + 1) * 100 / len(items)))
    elapsed_ms = int((time.monotonic() - started) * 1000)
    succeeded = sum(1 for r in results if r["success"])
    log.info("Job %s completed in %dms", ctx.id, elapsed_ms)
    return {
        "results": results,
        "total": len(results),
        "succeeded": succeeded,
        "failed": len(results) - succeeded,
        "processingTime": elapsed_ms,
        "timestamp": iso_now(),
        **usage_fields(await ctx.usage()),
    }


class ChatProgress(TextProgress):
    """A chat's progress: each tool step moves it on, and the answer streams into it."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(ctx, percent=10)
        self.steps: list[str] = []

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "steps": self.steps}

    async def step(self, step: AgentStep) -> None:
        self.steps.append(step.name)
        # Each tool call moves progress on, never reaching 100 before the answer.
        self.percent = min(90, 10 + len(self.steps) * 20)
        # Text written before a tool call was the model thinking aloud, not the answer.
        self.text = ""
        await self.ctx.log(f"tool {step.name}({step.arguments}) -> {step.error or 'ok'}")
        await self.flush()
