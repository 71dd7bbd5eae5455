"""A provider's 429 tells how long to wait: the OpenAI provider's error carries its
`Retry-After` (or `retry-after-ms`), which the rate limiter pauses the model for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentqueue.ai.providers.base import ProviderError, retry_after
from agentqueue.ai.providers.openai_provider import OpenAIProvider
from agentqueue.ai.types import ChatMessage
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after-ms": "250", "Retry-After": "7"}, 0.25),
    ({}, None),
])
async def test_a_429_carries_how_long_the_provider_asked_to_wait(
    fake: FakeOpenAI, headers: dict[str, str], seconds: float | None
) -> None:
    fake.script((429, {"error": {"message": "Rate limit reached"}}, headers))
    provider = OpenAIProvider(api_key="sk-test", base_url=fake.base_url, max_retries=0)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.chat([ChatMessage(role="user", content="hi")], [])
    finally:
        await provider.aclose()
    assert caught.value.status_code == 429 and caught.value.retryable
    assert caught.value.retry_after_s == seconds


def test_an_unreadable_retry_after_is_no_wait_at_all() -> None:
    # An HTTP date (clocks differ) or nonsense: the limiter's own default applies.
    assert retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after({"Retry-After": "-3"}) is None
