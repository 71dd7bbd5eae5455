from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agentqueue.ai import ToolRegistry, default_tools
from agentqueue.ai.providers.openai_provider import OpenAIProvider
from agentqueue.ai.tools.dataset import default_dataset_path
from tests.support.fake_openai import FakeOpenAI

API_KEY = "sk-test-7f3a9c1e5b2d4f60SECRET"


@pytest.fixture
def shipped_rows() -> list[dict[str, str]]:
    """The shipped CSV read with nothing but the csv module: the oracle for expectations."""
    with Path(default_dataset_path()).open(newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines))


@pytest.fixture
def tools() -> ToolRegistry:
    return default_tools(None)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.script()  # answer only what a test scripts: HTTP 500 once that runs out
    with fake.running():
        yield fake


@pytest.fixture
async def openai_provider(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        api_key=API_KEY, base_url=fake_openai.base_url, model="stub-model", max_retries=0
    )
    yield provider
    await provider.aclose()
