"""What a provider call does, the same over either HTTP client under the SDKs (aiohttp, the
default, and httpx): answers, streaming, timeouts, the SDK's retries, a refused connection and
the cancellation of a call in flight."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from agentqueue.ai import ChatMessage, ProviderError
from agentqueue.ai.providers.anthropic_provider import AnthropicProvider
from agentqueue.ai.providers.base import Provider
from agentqueue.ai.providers.http_client import HTTP_CLIENTS, check_http_client
from agentqueue.ai.providers.openai_provider import OpenAIProvider
from agentqueue.config import Settings
from agentqueue.handlers.providers import ProviderPool
from tests.support.fake_anthropic import FakeAnthropic, text_message
from tests.support.fake_openai import FakeAPIServer, FakeOpenAI, text_completion

from .conftest import API_KEY

KINDS = ("openai", "anthropic")


class Side:
    """One provider kind: its fake server, its provider, and a text answer in its wire shape."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fake: FakeAPIServer = FakeOpenAI() if kind == "openai" else FakeAnthropic()
        self.fake.script()

    @property
    def base_url(self) -> str:
        return str(self.fake.base_url)  # type: ignore[attr-defined]

    def answer(self, text: str) -> dict[str, Any]:
        if self.kind == "openai":
            return text_completion(text, prompt_tokens=7, completion_tokens=3)
        return text_message(text, input_tokens=7, output_tokens=3)

    def provider(self, http_client: str, *, base_url: str | None = None, **options: Any
                 ) -> Provider:
        make: Callable[..., Provider] = (OpenAIProvider if self.kind == "openai"
                                         else AnthropicProvider)
        options.setdefault("max_retries", 0)
        return make(api_key=API_KEY, base_url=base_url or self.base_url, model="m",
                    http_client=http_client, **options)


@pytest.fixture(params=KINDS)
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    side = Side(request.param)
    with side.fake.running():
        yield side


@pytest.fixture(params=HTTP_CLIENTS)
def http_client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def provider(side: Side, http_client: str) -> AsyncIterator[Provider]:
    provider = side.provider(http_client)
    yield provider
    await provider.aclose()


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


async def test_a_call_answers_and_counts_tokens(side: Side, provider: Provider) -> None:
    side.fake.script(side.answer("plain answer"))
    reply = await provider.chat(_user("hi"), [])
    assert reply.content == "plain answer"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 3)


async def test_a_streamed_call_hands_out_the_text_as_it_comes(side: Side,
                                                              provider: Provider) -> None:
    side.fake.script(side.answer("streamed in three words"))
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    reply = await provider.chat(_user("hi"), [], on_text=on_text)
    assert reply.content == "streamed in three words"
    assert len(pieces) > 1 and "".join(pieces) == reply.content
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 3)


async def test_a_provider_that_does_not_answer_in_time_times_out(side: Side,
                                                                 http_client: str) -> None:
    side.fake.hold()
    provider = side.provider(http_client, timeout=0.3)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.chat(_user("hi"), [])
    finally:
        await provider.aclose()
    assert "timed out" in str(caught.value)
    assert caught.value.retryable
    assert API_KEY not in str(caught.value)


async def test_the_sdk_retries_a_server_error(side: Side, http_client: str) -> None:
    side.fake.script((500, side.fake.error_body("try again")), side.answer("second time"))
    provider = side.provider(http_client, max_retries=1)
    try:
        reply = await provider.chat(_user("hi"), [])
    finally:
        await provider.aclose()
    assert reply.content == "second time"
    assert side.fake.count() == 2


async def test_a_refused_connection_is_unreachable_not_a_timeout(side: Side,
                                                                 http_client: str) -> None:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}" + ("/v1" if side.kind == "openai" else "")
        provider = side.provider(http_client, base_url=url)
        try:
            with pytest.raises(ProviderError) as caught:
                await provider.chat(_user("hi"), [])
        finally:
            await provider.aclose()
    message = str(caught.value)
    assert "could not be reached" in message
    assert f"127.0.0.1:{port}" in message
    assert API_KEY not in message
    assert caught.value.retryable


async def test_a_call_in_flight_can_be_cancelled_and_the_provider_goes_on(
    side: Side, provider: Provider
) -> None:
    side.fake.reply = lambda _request: side.answer("after the cancel")
    side.fake.hold()
    call = asyncio.create_task(provider.chat(_user("hi"), []))
    assert await asyncio.to_thread(side.fake.arrived.wait, 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    side.fake.release()
    assert (await provider.chat(_user("again"), [])).content == "after the cancel"


def test_the_worker_builds_its_providers_on_the_http_client_its_settings_name() -> None:
    for name in HTTP_CLIENTS:
        settings = Settings(OPENAI_API_KEY="sk-x", ANTHROPIC_API_KEY="sk-y", AI_HTTP_CLIENT=name)
        pool = ProviderPool(settings)
        assert getattr(pool.get("openai"), "http_client", None) == name
        assert getattr(pool.get("anthropic"), "http_client", None) == name
    assert Settings().ai_http_client == "aiohttp"
    with pytest.raises(ValueError, match="AI_HTTP_CLIENT|ai_http_client"):
        Settings(AI_HTTP_CLIENT="curl")
    with pytest.raises(ValueError, match="choose one of aiohttp, httpx"):
        check_http_client("curl")
