from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agentqueue.ai import ToolRegistry, default_tools
from agentqueue.ai.providers.openai_provider import OpenAIProvider
from agentqueue.ai.tools.dataset import default_dataset_path

from .openai_stub import OpenAIStub, RunningStub

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
def openai_stub() -> Iterator[OpenAIStub]:
    with RunningStub() as stub:
        yield stub


@pytest.fixture
async def openai_provider(openai_stub: OpenAIStub) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        api_key=API_KEY, base_url=openai_stub.base_url, model="stub-model", max_retries=0
    )
    yield provider
    await provider.aclose()
