"""The agent loop: ask the provider, run the tools it asks for, repeat until it answers in text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agentqueue.ai.providers.base import Provider, ProviderError, TextCallback
from agentqueue.ai.tools.base import ToolRegistry, ToolResult
from agentqueue.ai.types import AgentReply, AgentStep, ChatMessage, ToolCall, Usage

StepCallback = Callable[[AgentStep], Awaitable[None]]
# Runs one tool call the model asked for (a tool the run may use; the default: run it now).
# The queue's handlers give one that records each call as a durable step, or parks the job
# until a person approves it (`handlers.agent_steps`).
ToolRunner = Callable[[ToolCall, ToolRegistry], Awaitable[ToolResult]]


class AgentStepLimitExceeded(Exception):
    """The provider kept asking for tools after the allowed number of provider calls."""

    def __init__(self, max_steps: int, steps: list[AgentStep], usage: Usage) -> None:
        tools = ", ".join(dict.fromkeys(step.name for step in steps[-3:])) or "none"
        super().__init__(
            f"the agent did not reach an answer within {max_steps} steps "
            f"(most recent tool calls: {tools})"
        )
        self.max_steps = max_steps
        self.steps = steps
        self.usage = usage  # tokens were spent even though there is no answer


async def run_agent(
    message: str,
    history: list[ChatMessage],
    provider: Provider,
    tools: ToolRegistry,
    *,
    system_prompt: str | None = None,
    max_steps: int = 6,
    on_step: StepCallback | None = None,
    on_text: TextCallback | None = None,
    model: str | None = None,
    run_tool: ToolRunner | None = None,
) -> AgentReply:
    """Answer ``message`` in the context of ``history``, running tools as the provider asks.

    ``max_steps`` bounds the provider calls in one run; if the last allowed call still asks
    for tools, ``AgentStepLimitExceeded`` is raised. ``on_step`` is awaited after every tool
    call (to report progress); ``on_text`` streams the provider's text as it is written.
    ``model`` overrides the provider's default model. Provider failures propagate as
    ``ProviderError``. Only the tools in ``tools`` are offered, and a call to any other tool is
    refused (recorded as an error step), never run. ``run_tool`` runs the calls to tools in
    ``tools`` (see ``ToolRunner``).
    """
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    messages: list[ChatMessage] = []
    if system_prompt:
        messages.append(ChatMessage(role="system", content=system_prompt))
    messages.extend(history)
    messages.append(ChatMessage(role="user", content=message))
    specs = tools.specs()
    usage = Usage()
    steps: list[AgentStep] = []

    for _ in range(max_steps):
        reply = await provider.chat(messages, specs, model=model, on_text=on_text)
        usage = usage + reply.usage
        if not reply.tool_calls:
            if reply.content is None or not reply.content.strip():
                raise ProviderError(f"provider {provider.name!r} returned an empty answer")
            return AgentReply(
                response=reply.content,
                provider=provider.name,
                model=reply.model,
                usage=usage,
                steps=steps,
            )
        messages.append(
            ChatMessage(role="assistant", content=reply.content or "", tool_calls=reply.tool_calls)
        )
        for call in reply.tool_calls:
            step, result = await _run_tool(call, tools, run_tool)
            steps.append(step)
            messages.append(
                ChatMessage(
                    role="tool",
                    tool_call_id=call.id,
                    name=call.name,
                    content=result.as_message_content(),
                    is_error=step.error is not None,
                )
            )
            if on_step is not None:
                await on_step(step)
    raise AgentStepLimitExceeded(max_steps, steps, usage)


async def _run_tool(call: ToolCall, tools: ToolRegistry,
                    run_tool: ToolRunner | None) -> tuple[AgentStep, ToolResult]:
    if call.arguments_error is not None:
        result = ToolResult(error=call.arguments_error)
    elif run_tool is not None and call.name in tools:
        result = await run_tool(call, tools)
    else:
        result = await tools.call(call.name, call.arguments)
    step = AgentStep(
        tool_call_id=call.id,
        name=call.name,
        arguments=call.arguments,
        output=result.output,
        error=result.error,
    )
    return step, result
