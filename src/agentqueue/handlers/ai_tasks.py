"""Job handlers for the AI tasks: seed 003's `ai-jobs` (summarize, classify, sentiment, translate,
extract), seed 004's `ai-tasks` (generate-completion, generate-embeddings) and seed 002's agent
tasks (`agent-task`), defined on the built-in registry as a user defines a job type."""

from __future__ import annotations

from typing import Any

from agentqueue.ai import tasks
from agentqueue.ai.agent import run_agent
from agentqueue.ai.types import AgentStep, ChatMessage
from agentqueue.context import Context
from agentqueue.handlers.ai_runtime import guarded, task_result, usage_fields
from agentqueue.handlers.builtin import agent_tasks_queue, ai_jobs_queue, ai_tasks_queue
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
from agentqueue.handlers.streaming import TextProgress
from agentqueue.handlers.training import classify_with_model
from agentqueue.registry import JobRegistry

SUMMARIZE, CLASSIFY, SENTIMENT, TRANSLATE, EXTRACT = (
    "summarize", "classify", "sentiment", "translate", "extract",
)
AI_JOB_TYPES = (SUMMARIZE, CLASSIFY, SENTIMENT, TRANSLATE, EXTRACT)
GENERATE_COMPLETION, GENERATE_EMBEDDINGS = "generate-completion", "generate-embeddings"
AGENT_TASK = "agent-task"

# The types this module defines, as a user defines theirs (see handlers.builtin).
jobs = JobRegistry()



async def _finish(ctx: Context, out: tasks.TaskOutput) -> dict[str, Any]:
    await ctx.progress(100)
    return task_result(out, await ctx.usage())


# -- seed 003 ---------------------------------------------------------------------------------


@jobs.job(SUMMARIZE, queue=ai_jobs_queue)
async def summarize(ctx: Context, data: SummarizeInput) -> dict[str, Any]:
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    stream = TextProgress(ctx)
    out = await guarded(tasks.summarize(
        data.text, provider, model=data.model, max_sentences=data.maxSentences,
        on_text=stream,
    ))
    await stream.close()
    return await _finish(ctx, out)


@jobs.job(CLASSIFY, queue=ai_jobs_queue)
async def classify(ctx: Context, data: ClassifyInput) -> dict[str, Any]:
    if data.modelId is not None:  # a model-training job's classifier, offline
        await ctx.progress(10)
        output = await classify_with_model(ctx, data.modelId, data.text)
        await ctx.progress(100)
        return {**output, **usage_fields(await ctx.usage())}
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    out = await guarded(tasks.classify(data.text, provider, labels=data.labels,
                                       model=data.model))
    return await _finish(ctx, out)


@jobs.job(SENTIMENT, queue=ai_jobs_queue)
async def sentiment(ctx: Context, data: SentimentInput) -> dict[str, Any]:
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    out = await guarded(tasks.sentiment(data.text, provider, model=data.model))
    return await _finish(ctx, out)


@jobs.job(TRANSLATE, queue=ai_jobs_queue)
async def translate(ctx: Context, data: TranslateInput) -> dict[str, Any]:
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    stream = TextProgress(ctx)
    out = await guarded(tasks.translate(
        data.text, data.targetLanguage, provider, source_language=data.sourceLanguage,
        model=data.model, on_text=stream,
    ))
    await stream.close()
    return await _finish(ctx, out)


@jobs.job(EXTRACT, queue=ai_jobs_queue)
async def extract(ctx: Context, data: ExtractInput) -> dict[str, Any]:
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    out = await guarded(tasks.extract(data.text, data.schema_, provider, names=data.names,
                                      model=data.model))
    return await _finish(ctx, out)


# -- seed 004 ---------------------------------------------------------------------------------


@jobs.job(GENERATE_COMPLETION, queue=ai_tasks_queue)
async def completion(ctx: Context, data: CompletionInput) -> dict[str, Any]:
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    messages = [ChatMessage(role=m.role, content=m.content) for m in data.messages or []]
    # The conversation is its owner's: another caller's conversationId is a new one.
    owner = await ctx.owner() if data.conversationId else None
    conversations = ctx.ai.conversations
    if data.conversationId:
        stored = await conversations.history(owner, data.conversationId)
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
        await conversations.append_once(
            owner, data.conversationId, ctx.id,
            *turn, {"role": "assistant", "content": out.output["content"]},
        )
    result = await _finish(ctx, out)
    result["conversationId"] = data.conversationId
    result["tokens"] = result["tokenUsed"]
    return result


@jobs.job(GENERATE_EMBEDDINGS, queue=ai_tasks_queue)
async def embeddings(ctx: Context, data: EmbeddingsInput) -> dict[str, Any]:
    provider = ctx.ai.provider(data.provider)
    await ctx.progress(10)
    out = await guarded(tasks.embed(data.all_texts, provider, model=data.model))
    return await _finish(ctx, out)


# -- seed 002 ---------------------------------------------------------------------------------


@jobs.job(AGENT_TASK, queue=agent_tasks_queue)
async def agent_task(ctx: Context, data: AgentTaskInput) -> dict[str, Any]:
    ai = ctx.ai
    agent = ai.agents.get(data.agent)
    assert agent is not None  # the input model checked it against the same registry
    prompt = _task_prompt(ctx.data or {})
    provider = ai.provider(data.provider or agent.provider)
    tools = ai.tools if agent.tools is None else ai.tools.only(agent.tools)
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
        max_steps=agent.max_steps or ai.max_agent_steps, on_step=on_step,
        model=data.model or agent.model,
    ))
    await ctx.progress(100)
    return {
        "agentId": agent.id,
        "response": reply.response,
        "provider": reply.provider,
        "model": reply.model,
        "toolCalls": [s.model_dump(exclude={"tool_call_id"}) for s in reply.steps],
        **usage_fields(await ctx.usage()),
    }


def _task_prompt(data: dict[str, Any]) -> str:
    """Seed 002 tasks carry a title, a description and a context object."""
    parts = [str(data[k]) for k in ("prompt", "title", "description") if data.get(k)]
    if data.get("context"):
        parts.append(f"Context: {data['context']}")
    return "\n".join(parts)
