"""Job handlers for the AI tasks: seed 003's `ai-jobs` (summarize, classify, sentiment, translate,
extract), seed 004's `ai-tasks` (generate-completion, generate-embeddings) and seed 002's agent
tasks (`agent-task`)."""

from __future__ import annotations

from typing import Any

from agentqueue.ai import tasks
from agentqueue.ai.agent import run_agent
from agentqueue.ai.types import AgentStep, ChatMessage
from agentqueue.engine.worker import JobContext, WorkerRuntime
from agentqueue.handlers.ai_runtime import (
    AiRuntime,
    guarded,
    parse_input,
    task_result,
    usage_fields,
)
from agentqueue.handlers.inputs import (
    AgentTaskInput,
    ClassifyInput,
    CompletionInput,
    EmbeddingsInput,
    ExtractInput,
    SentimentInput,
    SummarizeInput,
    TranslateInput,
)
from agentqueue.handlers.metering import JobMeter
from agentqueue.handlers.streaming import TextProgress

SUMMARIZE, CLASSIFY, SENTIMENT, TRANSLATE, EXTRACT = (
    "summarize", "classify", "sentiment", "translate", "extract",
)
AI_JOB_TYPES = (SUMMARIZE, CLASSIFY, SENTIMENT, TRANSLATE, EXTRACT)
GENERATE_COMPLETION, GENERATE_EMBEDDINGS = "generate-completion", "generate-embeddings"
AGENT_TASK = "agent-task"


class AiTaskHandlers:
    def __init__(self, runtime: AiRuntime) -> None:
        self.rt = runtime

    def register_ai_jobs(self, worker: WorkerRuntime) -> None:
        for name, handler in {
            SUMMARIZE: self.summarize, CLASSIFY: self.classify, SENTIMENT: self.sentiment,
            TRANSLATE: self.translate, EXTRACT: self.extract,
        }.items():
            worker.register(name, handler)

    def register_ai_tasks(self, worker: WorkerRuntime) -> None:
        worker.register(GENERATE_COMPLETION, self.completion)
        worker.register(GENERATE_EMBEDDINGS, self.embeddings)

    def register_agent_tasks(self, worker: WorkerRuntime) -> None:
        worker.register(AGENT_TASK, self.agent_task)

    async def _finish(
        self, ctx: JobContext, meter: JobMeter, out: tasks.TaskOutput
    ) -> dict[str, Any]:
        await ctx.progress(100)
        return task_result(out, await meter.usage())

    # -- seed 003 -----------------------------------------------------------------------------

    async def summarize(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(SummarizeInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        stream = TextProgress(ctx)
        out = await guarded(tasks.summarize(
            data.text, provider, model=data.model, max_sentences=data.maxSentences,
            on_text=stream,
        ))
        await stream.close()
        return await self._finish(ctx, meter, out)

    async def classify(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(ClassifyInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        out = await guarded(tasks.classify(data.text, provider, labels=data.labels,
                                           model=data.model))
        return await self._finish(ctx, meter, out)

    async def sentiment(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(SentimentInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        out = await guarded(tasks.sentiment(data.text, provider, model=data.model))
        return await self._finish(ctx, meter, out)

    async def translate(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(TranslateInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        stream = TextProgress(ctx)
        out = await guarded(tasks.translate(
            data.text, data.targetLanguage, provider, source_language=data.sourceLanguage,
            model=data.model, on_text=stream,
        ))
        await stream.close()
        return await self._finish(ctx, meter, out)

    async def extract(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(ExtractInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        out = await guarded(tasks.extract(data.text, data.schema_, provider, names=data.names,
                                          model=data.model))
        return await self._finish(ctx, meter, out)

    # -- seed 004 -----------------------------------------------------------------------------

    async def completion(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(CompletionInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        messages = [ChatMessage(role=m.role, content=m.content) for m in data.messages or []]
        # The conversation is its owner's: another caller's conversationId is a new one.
        owner = await self.rt.owner_of(ctx) if data.conversationId else None
        if data.conversationId:
            stored = await self.rt.conversations.history(owner, data.conversationId)
            messages = [ChatMessage.model_validate(m) for m in stored] + messages
        if data.message is not None:
            messages.append(ChatMessage(role="user", content=data.message))
        await ctx.progress(30)
        stream = TextProgress(ctx, percent=60)
        out = await guarded(tasks.complete(
            messages, provider, model=data.model, max_tokens=data.maxTokens,
            temperature=data.temperature, on_text=stream,
        ))
        await stream.close()
        await ctx.progress(80)
        if data.conversationId:
            # The reply joins the stored conversation once, even if this job is retried after.
            turn = [{"role": "user", "content": data.message}] if data.message else []
            await self.rt.conversations.append_once(
                owner, data.conversationId, ctx.id,
                *turn, {"role": "assistant", "content": out.output["content"]},
            )
        result = await self._finish(ctx, meter, out)
        result["conversationId"] = data.conversationId
        result["tokens"] = result["tokenUsed"]
        return result

    async def embeddings(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(EmbeddingsInput, ctx)
        provider, meter = self.rt.provider_for(ctx, data.provider)
        await ctx.progress(10)
        out = await guarded(tasks.embed(data.all_texts, provider, model=data.model))
        return await self._finish(ctx, meter, out)

    # -- seed 002 -----------------------------------------------------------------------------

    async def agent_task(self, ctx: JobContext) -> dict[str, Any]:
        raw = ctx.data or {}
        data = parse_input(AgentTaskInput, ctx, {"agents": self.rt.agents.ids()})
        agent = self.rt.agents.get(data.agent)
        assert agent is not None  # the input model checked it against the same registry
        prompt = _task_prompt(raw)
        provider, meter = self.rt.provider_for(ctx, data.provider or agent.provider)
        tools = self.rt.tools if agent.tools is None else self.rt.tools.only(agent.tools)
        await ctx.progress(10)
        steps = 0

        async def on_step(step: AgentStep) -> None:
            nonlocal steps
            steps += 1
            if step.error and step.name not in tools:
                await ctx.log(f"refused tool {step.name!r}: agent {agent.id!r} may not use it")
            else:
                await ctx.log(f"tool {step.name} -> {step.error or 'ok'}")
            await ctx.progress({"percent": min(90, 10 + 15 * steps), "step": step.name})

        reply = await guarded(run_agent(
            prompt, [], provider, tools, system_prompt=agent.system_prompt,
            max_steps=agent.max_steps or self.rt.max_agent_steps, on_step=on_step,
            model=data.model or agent.model,
        ))
        await ctx.progress(100)
        usage = await meter.usage()
        return {
            "agentId": agent.id,
            "response": reply.response,
            "provider": reply.provider,
            "model": reply.model,
            "toolCalls": [s.model_dump(exclude={"tool_call_id"}) for s in reply.steps],
            **usage_fields(usage),
        }


def _task_prompt(data: dict[str, Any]) -> str:
    """Seed 002 tasks carry a title, a description and a context object."""
    parts = [str(data[k]) for k in ("prompt", "title", "description") if data.get(k)]
    if data.get("context"):
        parts.append(f"Context: {data['context']}")
    return "\n".join(parts)
