"""`chat` and `batch` jobs of the agent chat queue (seed 000): run the agent, report progress."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ValidationError

from agentqueue.ai.agent import run_agent
from agentqueue.ai.providers.base import Provider, ProviderError
from agentqueue.ai.tools.base import ToolRegistry
from agentqueue.ai.types import AgentReply, AgentStep, ChatMessage
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.handlers.sessions import SessionStore, new_session_id
from agentqueue.timefmt import iso_now

# Named as the seed's log lines show it: "[AgentQueueProcessor] Processing job 1 for message: …"
log = logging.getLogger("AgentQueueProcessor")

CHAT = "chat"
BATCH = "batch"


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
        "usage": {
            "inputTokens": reply.usage.input_tokens,
            "outputTokens": reply.usage.output_tokens,
        },
        "toolCalls": [
            {"tool": s.name, "arguments": s.arguments, "output": s.output, "error": s.error}
            for s in reply.steps
        ],
    }


class AgentChatHandlers:
    def __init__(
        self,
        provider: Provider,
        tools: ToolRegistry,
        sessions: SessionStore,
        *,
        max_steps: int = 6,
    ) -> None:
        self.provider = provider
        self.tools = tools
        self.sessions = sessions
        self.max_steps = max_steps

    async def _answer(
        self,
        ctx: JobContext,
        message: str,
        session_id: str,
        history_raw: Any,
        exchange_id: str,
        on_step: Any = None,
    ) -> AgentReply:
        if not isinstance(message, str) or not message.strip():
            raise PermanentJobError("message must be a non-empty string")
        # Explicit history wins; otherwise the session remembers earlier turns.
        history = (
            _history(history_raw)
            if history_raw is not None
            else _history(await self.sessions.history(session_id))
        )
        try:
            reply = await run_agent(
                message, history, self.provider, self.tools,
                max_steps=self.max_steps, on_step=on_step,
            )
        except ProviderError as exc:
            if exc.retryable:
                raise
            # Bad credentials or a rejected request: retrying cannot help.
            raise PermanentJobError(str(exc)) from exc
        await self.sessions.append_once(
            session_id, exchange_id,
            {"role": "user", "content": message},
            {"role": "assistant", "content": reply.response},
        )
        return reply

    async def chat(self, ctx: JobContext) -> dict[str, Any]:
        data = ctx.data or {}
        message = data.get("message", "")
        session_id = data.get("sessionId") or new_session_id()
        log.info('Processing job %s for message: "%s"', ctx.id, _preview(str(message)))
        started = time.monotonic()
        await ctx.progress(10)
        steps_done = 0

        async def on_step(step: AgentStep) -> None:
            nonlocal steps_done
            steps_done += 1
            # Each tool call moves progress on, never reaching 100 before the answer.
            await ctx.progress(min(90, 10 + steps_done * 20))
            await ctx.log(f"tool {step.name}({step.arguments}) -> {step.error or 'ok'}")

        reply = await self._answer(
            ctx, message, session_id, data.get("conversationHistory"), ctx.id, on_step
        )
        elapsed_ms = int((time.monotonic() - started) * 1000)
        await ctx.progress(100)
        log.info("Job %s completed in %dms", ctx.id, elapsed_ms)
        return {
            "response": reply.response,
            "sessionId": session_id,
            "processingTime": elapsed_ms,
            "timestamp": iso_now(),
            **_reply_fields(reply),
        }

    async def batch(self, ctx: JobContext) -> dict[str, Any]:
        data = ctx.data or {}
        items = data.get("messages")
        if not isinstance(items, list) or not items:
            raise PermanentJobError("messages must be a non-empty list")
        log.info("Processing job %s: batch of %d messages", ctx.id, len(items))
        started = time.monotonic()
        results: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            item = item if isinstance(item, dict) else {"message": item}
            message = item.get("message", "")
            session_id = item.get("sessionId") or new_session_id()
            item_started = time.monotonic()
            try:
                reply = await self._answer(
                    ctx, message, session_id, item.get("conversationHistory"),
                    f"{ctx.id}:{index}",
                )
                results.append({
                    "index": index,
                    "success": True,
                    "message": message,
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
                    "message": message,
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
        }
