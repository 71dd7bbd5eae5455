"""Every question of questions.json through the builtin agent, as a chat job runs it."""

from __future__ import annotations

from typing import Any

import pytest

from agentqueue.ai import ToolRegistry, build_provider
from agentqueue.ai.providers.base import Provider
from tests.ai.builtin.questions import ask, company_names, judge, load_questions

QUESTIONS = load_questions()


@pytest.fixture(scope="module")
def provider() -> Provider:
    return build_provider("builtin")


def test_the_set_is_large_and_varied() -> None:
    kinds = {item["kind"] for item in QUESTIONS}
    assert len(QUESTIONS) >= 100
    assert {"arithmetic", "dataset", "small talk", "cannot", "off-topic"} <= kinds
    assert sum(1 for item in QUESTIONS if item.get("refusal")) >= 15
    assert len({item["question"].casefold() for item in QUESTIONS}) == len(QUESTIONS)


@pytest.mark.parametrize("item", QUESTIONS, ids=[item["question"] for item in QUESTIONS])
async def test_question(item: dict[str, Any], provider: Provider, tools: ToolRegistry) -> None:
    reply = await ask(item, provider, tools)
    verdict = judge(item, reply, company_names())
    assert verdict.passed, f"{verdict.problems}\nanswer: {reply.response}"
