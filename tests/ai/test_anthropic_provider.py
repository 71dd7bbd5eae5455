"""The Anthropic provider and the agent loop against a local server speaking the messages API."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from agentqueue.ai import ChatMessage, ProviderError, ToolCall, ToolRegistry, run_agent
from agentqueue.ai.providers.anthropic_provider import AnthropicProvider
from agentqueue.ai.providers.base import CapabilityUnavailable
from tests.support.fake_anthropic import (
    FakeAnthropic,
    RawStream,
    error,
    message,
    message_events,
    text_block,
    text_message,
    tool_use,
)

from .conftest import API_KEY

SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string"}, "score": {"type": "number"}},
    "required": ["sentiment", "score"],
}


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.script()  # answer only what a test scripts: HTTP 500 once that runs out
    with fake.running():
        yield fake


@pytest.fixture
async def provider(fake_anthropic: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(
        api_key=API_KEY, base_url=fake_anthropic.base_url, model="claude-stub", max_retries=0
    )
    yield provider
    await provider.aclose()


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


class Collect:
    """An on_text callback that keeps the pieces."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    async def __call__(self, piece: str) -> None:
        self.pieces.append(piece)


async def test_agent_runs_a_tool_call_and_sums_usage(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider, tools: ToolRegistry
) -> None:
    fake_anthropic.script(
        message(
            text_block("I will calculate it."),
            tool_use("toolu_1", "calculator", {"expression": "100000 / 0.10"}),
            input_tokens=120,
            output_tokens=18,
        ),
        text_message("100000 / 0.10 is 1,000,000.", input_tokens=160, output_tokens=12),
    )

    reply = await run_agent(
        "Calculate 100000 / 0.10", [], provider, tools, system_prompt="Be brief."
    )

    assert reply.response == "100000 / 0.10 is 1,000,000."
    assert (reply.provider, reply.model) == ("anthropic", "claude-stub")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (280, 30)
    assert [(s.name, s.output, s.error) for s in reply.steps] == [("calculator", "1000000", None)]

    first, second = fake_anthropic.requests
    assert first.path == "/v1/messages"
    # Older SDKs send the key as x-api-key, newer ones as a bearer token.
    sent_key = first.headers.get("x-api-key") or first.headers["authorization"]
    assert sent_key.removeprefix("Bearer ") == API_KEY
    assert "anthropic-version" in first.headers
    assert first.body["model"] == "claude-stub"
    assert first.body["max_tokens"] == 1024
    assert first.body["system"] == "Be brief."
    assert first.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Calculate 100000 / 0.10"}]}
    ]
    offered = {t["name"]: t for t in first.body["tools"]}
    assert set(offered) == set(tools.names())
    assert offered["calculator"]["input_schema"]["required"] == ["expression"]
    assert offered["calculator"]["description"]
    assert "tool_choice" not in first.body

    assert second.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I will calculate it."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "calculator",
                    "input": {"expression": "100000 / 0.10"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "1000000"}],
        },
    ]


async def test_messages_are_merged_into_alternating_turns(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_anthropic.script(text_message("ok"))
    calls = [
        ToolCall(id="t1", name="calculator", arguments={"expression": "1/0"}),
        ToolCall(id="t2", name="calculator", arguments={"expression": "2+2"}),
    ]
    history = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="system", content="Use tools."),
        ChatMessage(role="user", content="first"),
        ChatMessage(role="user", content="second"),
        ChatMessage(role="assistant", content="", tool_calls=calls),
        ChatMessage(role="tool", tool_call_id="t1", content="Error: division by zero",
                    is_error=True),
        ChatMessage(role="tool", tool_call_id="t2", content="4"),
        ChatMessage(role="user", content="and?"),
    ]

    await provider.chat(history, [])

    body = fake_anthropic.requests[0].body
    assert body["system"] == "Be brief.\n\nUse tools."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "calculator",
                 "input": {"expression": "1/0"}},
                {"type": "tool_use", "id": "t2", "name": "calculator",
                 "input": {"expression": "2+2"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1",
                 "content": "Error: division by zero", "is_error": True},
                {"type": "tool_result", "tool_use_id": "t2", "content": "4"},
                {"type": "text", "text": "and?"},
            ],
        },
    ]
    assert "tools" not in body


async def test_per_call_options(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_anthropic.script(text_message("a"), text_message("b", model="claude-big"))

    await provider.chat(_user("hi"), [])
    reply = await provider.chat(
        _user("hi"), [], model="claude-big", max_tokens=99, temperature=0.2
    )

    plain, tuned = (r.body for r in fake_anthropic.requests)
    assert (plain["model"], plain["max_tokens"]) == ("claude-stub", 1024)
    assert not {"temperature", "stream", "tool_choice", "system"} & set(plain)
    assert (tuned["model"], tuned["max_tokens"], tuned["temperature"]) == ("claude-big", 99, 0.2)
    assert reply.model == "claude-big"


async def test_json_schema_forces_the_result_tool(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_anthropic.script(
        message(tool_use("toolu_r", "result", {"sentiment": "positive", "score": 0.9}),
                input_tokens=40, output_tokens=15)
    )

    reply = await provider.chat(_user("Love it"), [], json_schema=SCHEMA)

    assert json.loads(reply.content or "") == {"sentiment": "positive", "score": 0.9}
    assert reply.tool_calls == []
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (40, 15)
    body = fake_anthropic.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "result"}
    (result_tool,) = body["tools"]
    assert result_tool["name"] == "result"
    assert result_tool["input_schema"] == SCHEMA


async def test_json_schema_with_tools_lets_the_model_call_them_first(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider, tools: ToolRegistry
) -> None:
    fake_anthropic.script(
        message(tool_use("toolu_c", "calculator", {"expression": "6 * 7"})),
    )

    reply = await provider.chat(_user("6*7 as JSON"), tools.specs(), json_schema=SCHEMA)

    assert reply.content is None
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("calculator", {"expression": "6 * 7"})
    ]
    body = fake_anthropic.requests[0].body
    assert body["tool_choice"] == {"type": "any"}
    assert {t["name"] for t in body["tools"]} == {*tools.names(), "result"}


async def test_json_schema_without_the_result_is_an_error(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_anthropic.script(text_message("I'd rather chat."))
    with pytest.raises(ProviderError, match="did not give its answer through the 'result' tool"):
        await provider.chat(_user("x"), [], json_schema=SCHEMA)


async def test_streamed_text_reaches_on_text_in_pieces(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    text = "Quillstack is a notes app for writers."
    fake_anthropic.script(text_message(text, input_tokens=25, output_tokens=11))
    on_text = Collect()

    reply = await provider.chat(_user("What is Quillstack?"), [], on_text=on_text)

    assert len(on_text.pieces) > 3
    assert "".join(on_text.pieces) == reply.content == text
    # Input tokens from message_start, output tokens from message_delta.
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (25, 11)
    assert reply.model == "claude-stub"
    assert fake_anthropic.requests[0].body["stream"] is True


async def test_streamed_tool_use_is_reassembled(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider, tools: ToolRegistry
) -> None:
    body = message(
        text_block("Checking."),
        tool_use("toolu_a", "calculator", {"expression": "2 * (3 + 4)"}),
        tool_use("toolu_b", "search_deals_by_investor", {"investor": "Mark Cuban"}),
        input_tokens=70,
        output_tokens=33,
    )
    # The stream really carries the inputs in several input_json_delta pieces.
    deltas = [e for _, e in message_events(body) if e.get("delta", {}).get("partial_json")]
    assert len(deltas) > 4
    fake_anthropic.script(body, body)
    on_text = Collect()

    streamed = await provider.chat(_user("go"), tools.specs(), on_text=on_text)
    plain = await provider.chat(_user("go"), tools.specs())

    assert "".join(on_text.pieces) == "Checking."
    assert streamed == plain
    assert streamed.content == "Checking."
    assert [(c.id, c.name, c.arguments, c.arguments_error) for c in streamed.tool_calls] == [
        ("toolu_a", "calculator", {"expression": "2 * (3 + 4)"}, None),
        ("toolu_b", "search_deals_by_investor", {"investor": "Mark Cuban"}, None),
    ]
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (70, 33)


async def test_streamed_json_schema_answer(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake_anthropic.script(
        message(tool_use("toolu_r", "result", {"sentiment": "negative", "score": 0.1}))
    )
    on_text = Collect()

    reply = await provider.chat(_user("Hate it"), [], json_schema=SCHEMA, on_text=on_text)

    assert len(on_text.pieces) > 1
    assert "".join(on_text.pieces) == reply.content
    assert json.loads(reply.content or "") == {"sentiment": "negative", "score": 0.1}
    assert fake_anthropic.requests[0].body["tool_choice"] == {"type": "tool", "name": "result"}


async def test_on_text_is_called_while_the_stream_is_still_open(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    # Events 0-3: message_start, content_block_start, ping, the first text_delta. Then the
    # server waits for the test's callback to have seen that text; a provider that buffered
    # the text until the stream ended would make the wait time out (recorded as False).
    fake_anthropic.pause = threading.Event()
    fake_anthropic.pause_after = 3
    fake_anthropic.script(text_message("first second third"))

    async def on_text(piece: str) -> None:
        assert fake_anthropic.pause is not None
        fake_anthropic.pause.set()

    reply = await provider.chat(_user("go"), [], on_text=on_text)

    assert fake_anthropic.pause_outcomes == [True]
    assert reply.content == "first second third"


async def test_embed_is_unavailable(provider: AnthropicProvider) -> None:
    with pytest.raises(CapabilityUnavailable, match="OPENAI_API_KEY") as caught:
        await provider.embed(["x"])
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (500, "api_error", True),
        (529, "overloaded_error", True),
        (429, "rate_limit_error", True),
        (401, "authentication_error", False),
        (400, "invalid_request_error", False),
    ],
)
async def test_http_errors_become_provider_errors_without_the_key(
    fake_anthropic: FakeAnthropic,
    provider: AnthropicProvider,
    tools: ToolRegistry,
    status: int,
    error_type: str,
    retryable: bool,
) -> None:
    fake_anthropic.script(error(status, error_type, f"trouble with key {API_KEY}"))

    with pytest.raises(ProviderError) as caught:
        await run_agent("Hello", [], provider, tools)

    text = str(caught.value)
    assert f"HTTP {status}" in text
    assert error_type in text
    assert "trouble with key" in text
    assert API_KEY not in text
    assert caught.value.retryable is retryable
    assert caught.value.status_code == status


async def test_an_error_event_mid_stream_is_retryable_and_hides_the_key(
    fake_anthropic: FakeAnthropic, provider: AnthropicProvider
) -> None:
    events = message_events(text_message("partial answer here"))[:4]
    overloaded = {"type": "error", "error": {"type": "overloaded_error",
                                             "message": f"Overloaded {API_KEY}"}}
    fake_anthropic.script(RawStream([*events, ("error", overloaded)]))
    on_text = Collect()

    with pytest.raises(ProviderError) as caught:
        await provider.chat(_user("go"), [], on_text=on_text)

    assert on_text.pieces == ["partial "]
    assert "overloaded_error" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert caught.value.retryable


async def test_connection_refused_becomes_provider_error_without_the_key(
    tools: ToolRegistry,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        provider = AnthropicProvider(
            api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", model="m", max_retries=0
        )
        try:
            with pytest.raises(ProviderError) as caught:
                await run_agent("Hello", [], provider, tools)
        finally:
            await provider.aclose()

    message_text = str(caught.value)
    assert "could not be reached" in message_text
    assert f"127.0.0.1:{port}" in message_text
    assert API_KEY not in message_text
    assert caught.value.retryable
    assert API_KEY not in repr(provider)
