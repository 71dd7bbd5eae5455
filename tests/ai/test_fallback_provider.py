"""Model fallbacks in Python: a chain of real provider clients against two local stand-ins (the
OpenAI and Anthropic wire protocols), one failing as a provider does, the other answering."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from agentqueue.ai.providers.anthropic_provider import AnthropicProvider
from agentqueue.ai.providers.base import ProviderError
from agentqueue.ai.providers.builtin import BuiltinProvider
from agentqueue.ai.providers.fallback import AllModelsFailed, FallbackProvider, ModelLink
from agentqueue.ai.providers.openai_provider import OpenAIProvider
from agentqueue.ai.types import ChatMessage
from tests.support.fake_anthropic import FakeAnthropic, text_message
from tests.support.fake_openai import FakeOpenAI, text_completion

QUESTION = [ChatMessage(role="user", content="hello")]


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.fixture
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(lambda _r: text_message("from claude", model="claude-3-5-haiku-latest")
                       ).running() as server:
        yield server


def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def claude(anthropic_fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(api_key="sk-ant-test", base_url=anthropic_fake.base_url,
                                 max_retries=0)
    yield provider
    await provider.aclose()


async def openai_at(base_url: str, timeout: float = 30.0) -> OpenAIProvider:
    return OpenAIProvider(api_key="sk-test", base_url=base_url, max_retries=0, timeout=timeout)


class Failures:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def __call__(self, provider: str, model: str, error: ProviderError) -> None:
        self.seen.append((provider, model, str(error)))


@pytest.mark.parametrize("outage", ["503", "refused", "timeout", "429", "401"])
async def test_an_outage_moves_to_the_next_model(
    outage: str, openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic,
    claude: AnthropicProvider,
) -> None:
    base_url = openai_fake.base_url
    if outage == "503":
        openai_fake.script((503, {"error": {"message": "overloaded"}}))
    elif outage == "refused":
        base_url = f"http://127.0.0.1:{closed_port()}/v1"
    elif outage == "timeout":
        openai_fake.hold()  # answers nothing until the test ends
    elif outage == "429":
        openai_fake.script((429, {"error": {"message": "slow down"}}, {"Retry-After": "30"}))
    else:
        openai_fake.script((401, {"error": {"message": "bad key"}}))
    gpt = await openai_at(base_url, timeout=0.5)
    failures = Failures()
    chain = FallbackProvider([ModelLink(gpt, "gpt-4o-mini"),
                              ModelLink(claude, "claude-3-5-haiku-latest")], on_failure=failures)
    try:
        reply = await chain.chat(QUESTION, [])
    finally:
        await gpt.aclose()
    assert reply.content == "from claude"
    assert reply.model == "claude-3-5-haiku-latest"
    assert chain.name == "anthropic"  # who answered
    assert [(p, m) for p, m, _ in failures.seen] == [("openai", "gpt-4o-mini")]
    reason = failures.seen[0][2]
    expected = {"503": "HTTP 503", "refused": "could not be reached", "timeout": "timed out",
                "429": "HTTP 429", "401": "HTTP 401"}[outage]
    assert expected in reason
    # The second model was asked what the first was.
    assert "hello" in str(anthropic_fake.requests[0].body["messages"])


async def test_a_bad_request_fails_at_once_without_asking_the_next_model(
    openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic, claude: AnthropicProvider,
) -> None:
    openai_fake.script((400, {"error": {"message": "context too long"}}))
    gpt = await openai_at(openai_fake.base_url)
    chain = FallbackProvider([ModelLink(gpt, "gpt-4o-mini"), ModelLink(claude, "claude-x")])
    try:
        with pytest.raises(ProviderError, match="HTTP 400") as raised:
            await chain.chat(QUESTION, [])
    finally:
        await gpt.aclose()
    assert not raised.value.retryable
    assert anthropic_fake.count() == 0


async def test_every_model_failing_names_each_failure(
    openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic, claude: AnthropicProvider,
) -> None:
    openai_fake.script((500, {"error": {"message": "boom"}}))
    anthropic_fake.script((529, {"type": "error", "error": {"type": "overloaded_error",
                                                              "message": "overloaded"}}))
    gpt = await openai_at(openai_fake.base_url)
    chain = FallbackProvider([ModelLink(gpt, "gpt-4o-mini"), ModelLink(claude, "claude-x")])
    try:
        with pytest.raises(AllModelsFailed) as raised:
            await chain.chat(QUESTION, [])
    finally:
        await gpt.aclose()
    message = str(raised.value)
    assert "openai/gpt-4o-mini" in message and "HTTP 500" in message
    assert "anthropic/claude-x" in message and "529" in message
    assert raised.value.retryable  # a later retry of the job may find one up


async def test_the_first_model_that_answers_is_used_and_the_rest_are_not_asked(
    openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic, claude: AnthropicProvider,
) -> None:
    openai_fake.script(text_completion("from gpt", model="gpt-4o-mini"))
    gpt = await openai_at(openai_fake.base_url)
    chain = FallbackProvider([ModelLink(gpt, "gpt-4o-mini"), ModelLink(claude, "claude-x")])
    try:
        reply = await chain.chat(QUESTION, [])
    finally:
        await gpt.aclose()
    assert (reply.content, chain.name) == ("from gpt", "openai")
    assert openai_fake.requests[0].body["model"] == "gpt-4o-mini"
    assert anthropic_fake.count() == 0


async def test_the_builtin_provider_is_not_asked_a_prompt_it_cannot_answer(
    openai_fake: FakeOpenAI,
) -> None:
    """A summary asked of the builtin agent would get its "I answer dataset questions" text
    as the summary: in a chain, it only answers agent turns (with tools)."""
    openai_fake.script((503, {"error": {"message": "down"}}))
    gpt = await openai_at(openai_fake.base_url)
    chain = FallbackProvider([ModelLink(gpt, "gpt-4o-mini"),
                              ModelLink(BuiltinProvider(), "builtin-rules")])
    try:
        with pytest.raises(AllModelsFailed, match="builtin provider has no language model"):
            await chain.chat([ChatMessage(role="system", content="Summarize the text."),
                              *QUESTION], [])
    finally:
        await gpt.aclose()


async def test_a_stream_that_broke_after_text_is_not_replaced(
    openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic, claude: AnthropicProvider,
) -> None:
    from tests.support.fake_openai import RawStream

    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": {"content": "Half an "}, "finish_reason": None}]}
    openai_fake.script(RawStream([(None, chunk), ("error", {"error": {"message": "broke"}})]))
    gpt = await openai_at(openai_fake.base_url)
    chain = FallbackProvider([ModelLink(gpt, "gpt-4o-mini"), ModelLink(claude, "claude-x")])
    streamed: list[str] = []

    async def on_text(text: str) -> None:
        streamed.append(text)

    try:
        with pytest.raises(ProviderError):
            await chain.chat(QUESTION, [], on_text=on_text)
    finally:
        await gpt.aclose()
    assert streamed == ["Half an "]
    assert anthropic_fake.count() == 0


async def test_a_text_task_through_a_chain_starting_with_builtin_asks_the_language_model(
    openai_fake: FakeOpenAI,
) -> None:
    """A summary's chain [builtin, openai]: the builtin provider cannot write one through chat,
    so the chain, named for its language model, sends the task to openai."""
    from agentqueue.ai import tasks

    openai_fake.script(text_completion("A short summary.", model="gpt-4o-mini"))
    gpt = await openai_at(openai_fake.base_url)
    chain = FallbackProvider([ModelLink(BuiltinProvider(), "builtin-rules"),
                              ModelLink(gpt, "gpt-4o-mini")])
    try:
        out = await tasks.summarize("One sentence. Another one.", chain)
    finally:
        await gpt.aclose()
    assert (out.output["summary"], out.provider) == ("A short summary.", "openai")
