"""The OpenAI provider and the agent loop against a local server speaking the wire protocol."""

from __future__ import annotations

import json
import socket
import threading

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
from agentqueue.ai.types import EmbeddingResult
from tests.support.fake_openai import (
    FakeOpenAI,
    RawStream,
    completion,
    completion_chunks,
    fake_vector,
    function_call,
)

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


# --- per-call options, structured output, streaming, embeddings ---------------------------


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


async def test_per_call_options_are_sent_only_when_given(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    fake_openai.script(completion("a"), completion("b", model="other-model"))

    await openai_provider.chat(_user("hi"), [])
    reply = await openai_provider.chat(
        _user("hi"), [], model="other-model", max_tokens=50, temperature=0.0
    )

    plain, tuned = (r.body for r in fake_openai.requests)
    assert plain["model"] == "stub-model"
    assert not {"max_tokens", "temperature", "response_format", "stream", "tools"} & set(plain)
    assert (tuned["model"], tuned["max_tokens"], tuned["temperature"]) == ("other-model", 50, 0.0)
    assert reply.model == "other-model"


async def test_json_schema_asks_for_structured_output(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    schema = {
        "type": "object",
        "properties": {"sentiment": {"type": "string"}, "score": {"type": "number"}},
        "required": ["sentiment", "score"],
    }
    fake_openai.script(completion('{"sentiment": "positive", "score": 0.9}'))

    reply = await openai_provider.chat(_user("Love it"), [], json_schema=schema)

    assert json.loads(reply.content or "") == {"sentiment": "positive", "score": 0.9}
    assert fake_openai.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "result", "schema": schema, "strict": False},
    }


async def test_streamed_text_reaches_on_text_in_pieces(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    text = "Brinewave Pickle Co. makes small-batch pickles."
    fake_openai.script(completion(text, prompt_tokens=31, completion_tokens=9, model="m-2024"))
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    reply = await openai_provider.chat(_user("What is Brinewave?"), [], on_text=on_text)

    assert len(pieces) > 3
    assert "".join(pieces) == reply.content == text
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (31, 9)
    assert reply.model == "m-2024"
    assert reply.tool_calls == []
    body = fake_openai.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_streamed_tool_calls_are_reassembled(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, tools: ToolRegistry
) -> None:
    fake_openai.script(
        completion(
            tool_calls=[
                function_call("call_a", "calculator", {"expression": "2 * (3 + 4)"}),
                function_call("call_b", "search_deals_by_investor", {"investor": "Mark Cuban"}),
            ],
            prompt_tokens=50,
            completion_tokens=20,
        )
    )
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    reply = await openai_provider.chat(_user("go"), tools.specs(), on_text=on_text)

    assert pieces == []
    assert reply.content is None
    assert [(c.id, c.name, c.arguments, c.arguments_error) for c in reply.tool_calls] == [
        ("call_a", "calculator", {"expression": "2 * (3 + 4)"}, None),
        ("call_b", "search_deals_by_investor", {"investor": "Mark Cuban"}, None),
    ]
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (50, 20)


async def test_streaming_and_plain_replies_agree(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    body = completion(
        "Let me compute that.",
        tool_calls=[function_call("call_1", "calculator", {"expression": "1 + 1"})],
        prompt_tokens=12,
        completion_tokens=4,
    )
    fake_openai.script(body, body)

    async def ignore(_piece: str) -> None:
        pass

    plain = await openai_provider.chat(_user("x"), [])
    streamed = await openai_provider.chat(_user("x"), [], on_text=ignore)
    assert streamed == plain


async def test_on_text_is_called_while_the_stream_is_still_open(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    # The server sends the role chunk (event 0) and the first content chunk (event 1), then
    # waits until the test's callback has seen that text. A provider that buffered the text
    # until the stream ended could never get there: the server gives up after its timeout and
    # records False, so this fails rather than hangs.
    fake_openai.pause = threading.Event()
    fake_openai.pause_after = 1
    fake_openai.script(completion("first second third"))
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)
        assert fake_openai.pause is not None
        fake_openai.pause.set()

    reply = await openai_provider.chat(_user("go"), [], on_text=on_text)

    assert fake_openai.pause_outcomes == [True]
    assert pieces[0] == "first "
    assert reply.content == "first second third"


async def test_an_error_event_mid_stream_becomes_provider_error_without_the_key(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    first = completion_chunks(completion("partial answer"), include_usage=False)[:2]
    fake_openai.script(
        RawStream(
            [
                *((None, chunk) for chunk in first),
                (None, {"error": {"message": f"overloaded, key {API_KEY}", "type": "server"}}),
            ]
        )
    )
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    with pytest.raises(ProviderError) as caught:
        await openai_provider.chat(_user("go"), [], on_text=on_text)

    assert "overloaded" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert caught.value.retryable


async def test_a_rejected_stream_request_is_not_retryable_and_hides_the_key(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    fake_openai.script((401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}}))

    async def on_text(_piece: str) -> None:
        pass

    with pytest.raises(ProviderError) as caught:
        await openai_provider.chat(_user("go"), [], on_text=on_text)

    assert "HTTP 401" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert not caught.value.retryable


async def test_embeddings_come_back_in_input_order_with_usage(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    texts = ["pickles", "notes app", "a b c"]

    result = await openai_provider.embed(texts)

    # The fake lists the vectors in reverse order, each with its index.
    assert result.vectors == [fake_vector(t) for t in texts]
    assert result.model == "text-embedding-3-small"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (6, 0)
    assert result.dimensions == 4
    (request,) = fake_openai.requests
    assert request.path == "/v1/embeddings"
    assert request.body["model"] == "text-embedding-3-small"
    assert request.body["input"] == texts
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_embedding_model_from_constructor_and_per_call(fake_openai: FakeOpenAI) -> None:
    provider = OpenAIProvider(
        api_key=API_KEY, base_url=fake_openai.base_url, embedding_model="embed-local",
        max_retries=0,
    )
    try:
        assert (await provider.embed(["x"])).model == "embed-local"
        assert (await provider.embed(["x"], model="embed-big")).model == "embed-big"
        assert await provider.embed([]) == EmbeddingResult(vectors=[], model="embed-local")
    finally:
        await provider.aclose()
    assert [r.body["model"] for r in fake_openai.requests] == ["embed-local", "embed-big"]


async def test_embedding_errors_hide_the_key(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider
) -> None:
    fake_openai.embed_reply = lambda _: (429, {"error": {"message": f"slow down {API_KEY}"}})
    with pytest.raises(ProviderError) as caught:
        await openai_provider.embed(["x"])
    assert "HTTP 429" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert caught.value.retryable


async def test_with_streaming_off_the_answer_comes_whole_with_its_usage(
    fake_openai: FakeOpenAI
) -> None:
    # OPENAI_STREAM=false, for servers whose streams carry no usage (llama-cpp-python).
    provider = OpenAIProvider(api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0,
                              stream=False)
    text = "Brinewave Pickle Co. makes small-batch pickles."
    fake_openai.script(completion(text, prompt_tokens=31, completion_tokens=9))
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    reply = await provider.chat(_user("What is Brinewave?"), [], on_text=on_text)
    await provider.aclose()

    assert pieces == [text] and reply.content == text
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (31, 9)
    assert "stream" not in fake_openai.requests[0].body


async def test_a_stream_without_usage_is_logged_once(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, caplog: pytest.LogCaptureFixture
) -> None:
    chunks = completion_chunks(completion("hello there"), include_usage=False)
    fake_openai.script(RawStream([(None, c) for c in chunks] + [(None, "[DONE]")]),
                       RawStream([(None, c) for c in chunks] + [(None, "[DONE]")]))

    async def ignore(_piece: str) -> None:
        pass

    for _ in range(2):
        reply = await openai_provider.chat(_user("hi"), [], on_text=ignore)
        assert reply.content == "hello there" and reply.usage.total_tokens == 0
    warned = [r.getMessage() for r in caplog.records if "OPENAI_STREAM=false" in r.getMessage()]
    assert len(warned) == 1
