"""The builtin provider end to end through run_agent, on the seed's questions."""

from __future__ import annotations

import pytest

from agentqueue.ai import AgentStep, ChatMessage, ToolRegistry, build_provider, run_agent
from agentqueue.ai.providers.builtin import BuiltinProvider


@pytest.fixture
def builtin() -> BuiltinProvider:
    provider = build_provider("builtin")
    assert isinstance(provider, BuiltinProvider)
    return provider


def investors_of(row: dict[str, str]) -> list[str]:
    return [name.strip() for name in row["investors"].split(";") if name.strip()]


def turn(question: str, answer: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="user", content=question),
        ChatMessage(role="assistant", content=answer),
    ]


async def test_deals_by_mark_cuban(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    reply = await run_agent("What deals did Mark Cuban make?", [], builtin, tools)

    cuban = [r["company"] for r in shipped_rows if "Mark Cuban" in investors_of(r)]
    others = [r["company"] for r in shipped_rows if "Mark Cuban" not in investors_of(r)]
    assert all(company in reply.response for company in cuban)
    assert not any(company in reply.response for company in others)
    assert [(s.name, s.arguments["investor"]) for s in reply.steps] == [
        ("search_deals_by_investor", "Mark Cuban")
    ]
    assert (reply.provider, reply.model) == ("builtin", "builtin-rules")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (0, 0)


async def test_food_companies(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    reply = await run_agent("Show me food companies", [], builtin, tools)

    food = [r["company"] for r in shipped_rows if r["category"] == "Food"]
    not_food = [r["company"] for r in shipped_rows if r["category"] != "Food"]
    assert all(company in reply.response for company in food)
    assert not any(company in reply.response for company in not_food)
    assert reply.steps[0].name == "search_companies_by_category"


async def test_calculation(builtin: BuiltinProvider, tools: ToolRegistry) -> None:
    reply = await run_agent("Calculate 100000 / 0.10", [], builtin, tools)
    assert reply.response == "100000 / 0.10 = 1,000,000"
    assert reply.steps[0].name == "calculator"
    assert reply.steps[0].output == "1000000"


async def test_calculation_error_is_explained(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Calculate 10 / 0", [], builtin, tools)
    assert "division by zero" in reply.response
    assert reply.steps[0].error == "division by zero"


async def test_follow_up_resolves_to_first_company_of_previous_answer(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    question = "What deals did Mark Cuban make?"
    first = await run_agent(question, [], builtin, tools)
    cuban = [r for r in shipped_rows if "Mark Cuban" in investors_of(r)]

    reply = await run_agent(
        "Tell me more about the first one", turn(question, first.response), builtin, tools
    )

    assert [(s.name, s.arguments["name"]) for s in reply.steps] == [
        ("get_company", cuban[0]["company"])
    ]
    assert reply.response.startswith(cuban[0]["company"])
    assert cuban[0]["founder"] in reply.response
    assert cuban[1]["company"] not in reply.response


async def test_follow_up_ordinal_picks_that_item(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    question = "Show me food companies"
    listing = await run_agent(question, [], builtin, tools)
    food = [r for r in shipped_rows if r["category"] == "Food"]

    reply = await run_agent(
        "What about the second one?", turn(question, listing.response), builtin, tools
    )

    assert reply.response.startswith(food[1]["company"])
    assert food[1]["founder"] in reply.response


async def test_follow_up_with_the_seed_history_uses_the_previous_question(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    # The seed's example history: the assistant answer names no company.
    history = turn("What deals did Mark Cuban make?", "Mark Cuban has made several deals...")
    first_deal = next(r for r in shipped_rows if "Mark Cuban" in investors_of(r))

    reply = await run_agent("Tell me more about the first one", history, builtin, tools)

    assert [s.name for s in reply.steps] == ["search_deals_by_investor", "get_company"]
    assert reply.response.startswith(first_deal["company"])


async def test_follow_up_without_context_says_so(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Tell me more about the first one", [], builtin, tools)
    assert reply.steps == []
    assert "could not tell what that refers to" in reply.response


async def test_unrelated_question_gets_an_honest_answer(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Write me a poem about the sea", [], builtin, tools)
    assert reply.steps == []
    assert "builtin provider can only answer" in reply.response
    assert "OPENAI_API_KEY" in reply.response
    assert reply.provider == "builtin"


async def test_unknown_category_lists_the_real_ones(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Show me robot companies", [], builtin, tools)
    assert "no companies in the category 'robot'" in reply.response
    assert "Food" in reply.response and "Technology" in reply.response


async def test_company_question(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    row = next(r for r in shipped_rows if r["company"] == "Snoutly")
    reply = await run_agent("Tell me about Snoutly", [], builtin, tools)
    assert reply.steps[0].name == "get_company"
    assert row["founder"] in reply.response
    assert "Pets" in reply.response


async def test_without_the_needed_tool_it_says_so(builtin: BuiltinProvider) -> None:
    reply = await run_agent("Calculate 1 + 1", [], builtin, ToolRegistry())
    assert reply.steps == []
    assert "calculator tool is not available" in reply.response


async def test_progress_callback_sees_each_tool_call(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    seen: list[AgentStep] = []

    async def on_step(step: AgentStep) -> None:
        seen.append(step)

    history = turn("What deals did Mark Cuban make?", "Mark Cuban has made several deals...")
    reply = await run_agent(
        "Tell me more about the first one", history, builtin, tools, on_step=on_step
    )
    assert seen == reply.steps
    assert len(seen) == 2
