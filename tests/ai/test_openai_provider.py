"""The OpenAI provider and the agent loop against a local server speaking the wire protocol."""

from __future__ import annotations

import socket

import pytest

from agentqueue.ai import (
    AgentStep,
    AgentStepLimitExceeded,
    ChatMessage,
    ProviderError,
    ToolRegistry,
    run_agent,
)
from agentqueue.ai.providers.openai_provider import OpenAIProvider
from tests.support.fake_openai import FakeOpenAI, completion, function_call

from .conftest import API_KEY


async def test_agent_runs_a_tool_call_and_sums_usage(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    fake_openai.script(
        completion(
            tool_calls=[function_call("call_1", "calculator", {"expression": "100000 / 0.10"})],
            prompt_tokens=120,
            completion_tokens=18,
        )
    )
    fake_openai.script(
        completion("100000 / 0.10 is 1,000,000.", prompt_tokens=160, completion_tokens=12)
    )

    reply = await run_agent(
        "Calculate 100000 / 0.10", [], openai_provider, tools, system_prompt="Be brief."
    )

    assert reply.response == "100000 / 0.10 is 1,000,000."
    assert (reply.provider, reply.model) == ("openai", "stub-model")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (280, 30)
    assert [(s.name, s.output, s.error) for s in reply.steps] == [("calculator", "1000000", None)]

    first, second = (r.body for r in fake_openai.requests)
    assert first["model"] == "stub-model"
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Calculate 100000 / 0.10"},
    ]
    offered = {t["function"]["name"]: t for t in first["tools"]}
    assert set(offered) == set(tools.names())
    assert offered["calculator"]["type"] == "function"
    assert offered["calculator"]["function"]["parameters"]["required"] == ["expression"]
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {API_KEY}"

    assistant, tool_message = second["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "calculator"
    assert tool_message == {"role": "tool", "tool_call_id": "call_1", "content": "1000000"}


async def test_history_is_sent_before_the_new_message(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    fake_openai.script(completion("Quillstack is a notes app."))
    history = [
        ChatMessage(role="user", content="What deals did Mark Cuban make?"),
        ChatMessage(role="assistant", content="Brinewave Pickle Co. and Quillstack."),
    ]
    await run_agent("Tell me more about the second one", history, openai_provider, tools)
    assert fake_openai.requests[0].body["messages"] == [
        {"role": "user", "content": "What deals did Mark Cuban make?"},
        {"role": "assistant", "content": "Brinewave Pickle Co. and Quillstack."},
        {"role": "user", "content": "Tell me more about the second one"},
    ]


async def test_unknown_tool_and_bad_arguments_go_back_to_the_model(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    fake_openai.script(
        completion(
            tool_calls=[
                function_call("call_w", "weather", {"city": "Oslo"}),
                function_call("call_c", "calculator", "{not json"),
            ]
        )
    )
    fake_openai.script(completion("I cannot check the weather."))
    seen: list[AgentStep] = []

    async def on_step(step: AgentStep) -> None:
        seen.append(step)

    reply = await run_agent("Weather in Oslo?", [], openai_provider, tools, on_step=on_step)

    assert reply.response == "I cannot check the weather."
    assert seen == reply.steps
    weather, calc = reply.steps
    assert weather.error is not None and "unknown tool 'weather'" in weather.error
    assert calc.error is not None and "not valid JSON" in calc.error
    tool_messages = [m for m in fake_openai.requests[1].body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_w", "call_c"]
    assert tool_messages[0]["content"].startswith("Error: unknown tool 'weather'")
    assert tool_messages[1]["content"].startswith("Error: arguments are not valid JSON")


async def test_step_limit(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    for n in range(3):
        fake_openai.script(
            completion(
                tool_calls=[function_call(f"call_{n}", "calculator", {"expression": "1 + 1"})],
                prompt_tokens=10,
                completion_tokens=1,
            )
        )

    with pytest.raises(AgentStepLimitExceeded, match="within 2 steps") as caught:
        await run_agent("Loop forever", [], openai_provider, tools, max_steps=2)

    assert len(fake_openai.requests) == 2
    assert len(caught.value.steps) == 2
    assert caught.value.usage.input_tokens == 20


async def test_http_500_becomes_provider_error_without_the_key(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    # A careless server echoing the credentials must not leak them into the job's error.
    fake_openai.script((500, {"error": {"message": f"boom while serving key {API_KEY}"}}))

    with pytest.raises(ProviderError) as caught:
        await run_agent("Hello", [], openai_provider, tools)

    message = str(caught.value)
    assert "HTTP 500" in message
    assert "boom while serving key" in message
    assert API_KEY not in message
    assert caught.value.retryable
    assert caught.value.status_code == 500


async def test_rejected_credentials_are_not_retryable(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    fake_openai.script((401, {"error": {"message": "Incorrect API key provided"}}))
    with pytest.raises(ProviderError) as caught:
        await run_agent("Hello", [], openai_provider, tools)
    assert "HTTP 401" in str(caught.value)
    assert not caught.value.retryable


async def test_connection_refused_becomes_provider_error_without_the_key(
    tools: ToolRegistry,
) -> None:
    # A bound socket that is not listening refuses connections, and holds the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        provider = OpenAIProvider(
            api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0
        )
        try:
            with pytest.raises(ProviderError) as caught:
                await run_agent("Hello", [], provider, tools)
        finally:
            await provider.aclose()

    message = str(caught.value)
    assert "could not be reached" in message
    assert f"127.0.0.1:{port}" in message
    assert API_KEY not in message
    assert caught.value.retryable


async def test_an_empty_answer_is_an_error(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    fake_openai.script(completion(None))
    with pytest.raises(ProviderError, match="empty answer"):
        await run_agent("Hello", [], openai_provider, tools)
