"""The builtin provider end to end through run_agent, on the seed's questions."""

from __future__ import annotations

import pytest

from agentqueue.ai import AgentStep, ChatMessage, ToolRegistry, build_provider, run_agent
from agentqueue.ai.embeddings.minilm import EmbeddingModelUnavailable
from agentqueue.ai.providers import builtin_routing
from agentqueue.ai.providers.builtin import BuiltinProvider
from agentqueue.ai.providers.builtin_routing import EntityIndex, Intent, Unanswerable, route
from agentqueue.ai.tools.dataset import load_dataset


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


# --- rule 9: questions the rules miss, routed by sentence embeddings ----------------------------


def rules_alone(question: str) -> Intent:
    return route(question, [], EntityIndex.from_dataset(load_dataset()))


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("I'm curious about startups that sell snacks", "Food"),
        ("Which companies make gadgets or software?", "Technology"),
        ("Any businesses for dogs and cats?", "Pets"),
        ("Are there any skincare or makeup brands?", "Beauty"),
        ("Which startups make clothes?", "Fashion"),
        ("Do you have any companies selling furniture or things for the house?", "Home"),
    ],
)
async def test_paraphrased_category_questions_list_that_category(
    builtin: BuiltinProvider,
    tools: ToolRegistry,
    shipped_rows: list[dict[str, str]],
    question: str,
    category: str,
) -> None:
    # Some of these the category aliases ("snacks" -> Food) read, the others rule 9.
    reply = await run_agent(question, [], builtin, tools)

    assert [(s.name, s.arguments["category"]) for s in reply.steps] == [
        ("search_companies_by_category", category)
    ]
    wanted = [r["company"] for r in shipped_rows if r["category"] == category]
    others = [r["company"] for r in shipped_rows if r["category"] != category]
    assert all(company in reply.response for company in wanted)
    assert not any(company in reply.response for company in others)


@pytest.mark.parametrize(
    ("question", "company"),
    [
        ("Tell me about the company that makes hot sauce kits", "Saucery Lab"),
        ("Who founded the startup selling pickles in seaweed brine?", "Brinewave Pickle Co."),
        ("Who makes the shortbread shaped like a moon?", "Crumbly Moon Bakery"),
        ("Is there a company that makes dog treats?", "Barkley Biscuit Co."),
    ],
)
async def test_a_product_described_in_other_words_finds_its_company(
    builtin: BuiltinProvider,
    tools: ToolRegistry,
    shipped_rows: list[dict[str, str]],
    question: str,
    company: str,
) -> None:
    assert rules_alone(question) == Unanswerable()
    row = next(r for r in shipped_rows if r["company"] == company)

    reply = await run_agent(question, [], builtin, tools)

    assert [(s.name, s.arguments["name"]) for s in reply.steps] == [("get_company", company)]
    assert reply.response.startswith(company)
    assert row["founder"] in reply.response


async def test_follow_up_after_an_embedding_routed_answer(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    question = "I'm curious about startups that sell snacks"
    listing = await run_agent(question, [], builtin, tools)
    food = [r for r in shipped_rows if r["category"] == "Food"]

    reply = await run_agent(
        "Tell me more about the third one", turn(question, listing.response), builtin, tools
    )

    assert reply.response.startswith(food[2]["company"])


@pytest.mark.parametrize(
    "question",
    [
        "What's the weather like tomorrow?",
        "Translate hello into French",
        "Tell me a joke about dogs",  # about pets, but not a question about the dataset
        "Recommend a good recipe for dinner",
        "Should I invest in Bitcoin?",
        "Who won the world cup in 2018?",
    ],
)
async def test_unrelated_questions_stay_honest(
    builtin: BuiltinProvider, tools: ToolRegistry, question: str
) -> None:
    reply = await run_agent(question, [], builtin, tools)
    assert reply.steps == []
    assert reply.response.startswith("The builtin provider can only answer")
    assert "OPENAI_API_KEY" in reply.response


async def test_an_ambiguous_product_question_is_not_guessed(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    # Two companies make sleep products (a night-light and a sleep mask) in two categories.
    reply = await run_agent("What startups help people sleep better?", [], builtin, tools)
    assert reply.steps == []
    assert "could not tell which category or company" in reply.response
    assert "Food, Health, Home" in reply.response  # the categories, to ask again
    assert "builtin provider can only answer" in reply.response


async def test_an_investor_question_without_an_investor_says_so(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Which startups did that shark back?", [], builtin, tools)
    assert reply.steps == []
    assert "names no investor" in reply.response
    assert "Mark Cuban" in reply.response and "Priya Halvorsen" in reply.response


async def test_arithmetic_without_figures_asks_for_them(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Add these numbers together.", [], builtin, tools)
    assert reply.steps == []
    assert "no expression to calculate" in reply.response


async def test_embedding_routing_respects_the_tools_offered(builtin: BuiltinProvider) -> None:
    reply = await run_agent("Any businesses for dogs and cats?", [], builtin, ToolRegistry())
    assert reply.steps == []
    assert "search_companies_by_category tool is not available" in reply.response


async def test_without_embedding_routing_rule_8_answers(tools: ToolRegistry) -> None:
    provider = BuiltinProvider(load_dataset(), embedding_routing=False)
    reply = await run_agent("Any businesses for dogs and cats?", [], provider, tools)
    assert reply.steps == []
    assert reply.response.startswith("The builtin provider can only answer")


async def test_without_the_model_rule_8_answers(
    tools: ToolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(texts: object) -> object:
        raise EmbeddingModelUnavailable("not installed")

    monkeypatch.setattr(builtin_routing, "embed_texts", unavailable)
    monkeypatch.setattr(builtin_routing, "_TARGET_CACHE", {})
    provider = BuiltinProvider(load_dataset())
    reply = await run_agent("Any businesses for dogs and cats?", [], provider, tools)
    assert reply.steps == []
    assert reply.response.startswith("The builtin provider can only answer")


# --- issue 14: what a new user tried, each once answered wrongly or refused -------------------


async def test_scientific_notation_is_one_number(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Compute 3e4 / 12", [], builtin, tools)
    assert [(s.name, s.arguments["expression"], s.output) for s in reply.steps] == [
        ("calculator", "3e4 / 12", "2500")
    ]
    assert reply.response == "3e4 / 12 = 2,500"


async def test_scientific_notation_with_a_decimal_after_please(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Please compute 2.5e3 * 4", [], builtin, tools)
    assert [(s.name, s.output) for s in reply.steps] == [("calculator", "10000")]
    assert reply.response == "2.5e3 * 4 = 10,000"


async def test_the_fitness_category_named_after_companies(
    builtin: BuiltinProvider, tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    reply = await run_agent("List the companies in the fitness category", [], builtin, tools)
    assert [(s.name, s.arguments["category"]) for s in reply.steps] == [
        ("search_companies_by_category", "Fitness")
    ]
    fitness = [r["company"] for r in shipped_rows if r["category"] == "Fitness"]
    others = [r["company"] for r in shipped_rows if r["category"] != "Fitness"]
    assert all(company in reply.response for company in fitness)
    assert not any(company in reply.response for company in others)
    assert "no category" not in reply.response and "no companies" not in reply.response


async def test_subtract_x_from_y(builtin: BuiltinProvider, tools: ToolRegistry) -> None:
    reply = await run_agent("Subtract 17 from 250", [], builtin, tools)
    assert [(s.name, s.arguments["expression"], s.output) for s in reply.steps] == [
        ("calculator", "250 - 17", "233")
    ]
    assert reply.response == "250 - 17 = 233"


async def test_divide_x_by_y(builtin: BuiltinProvider, tools: ToolRegistry) -> None:
    reply = await run_agent("Divide 900 by 4", [], builtin, tools)
    assert [(s.name, s.arguments["expression"], s.output) for s in reply.steps] == [
        ("calculator", "900 / 4", "225")
    ]
    assert reply.response == "900 / 4 = 225"


async def test_a_greeting_gets_a_short_honest_answer(
    builtin: BuiltinProvider, tools: ToolRegistry
) -> None:
    reply = await run_agent("Hi there!", [], builtin, tools)
    assert reply.steps == []
    assert reply.response.startswith("Hello!")
    assert "can only answer questions about the dataset" not in reply.response
    assert "calculator" in reply.response and "dataset" in reply.response


async def test_what_can_you_do(builtin: BuiltinProvider, tools: ToolRegistry) -> None:
    reply = await run_agent("What can you do?", [], builtin, tools)
    assert reply.steps == []
    assert "can only answer questions about the dataset" not in reply.response
    assert "Arithmetic" in reply.response and "dataset" in reply.response
    assert "OPENAI_API_KEY" in reply.response


async def test_a_defect_in_the_rules_is_an_honest_answer_not_a_failed_job(
    tools: ToolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentqueue.ai.providers import builtin as builtin_module

    def broken(*args: object) -> Intent:
        raise IndexError("a rule's defect")

    monkeypatch.setattr(builtin_module, "route", broken)
    provider = BuiltinProvider(load_dataset(), embedding_routing=False)
    reply = await run_agent("Anything at all", [], provider, tools)
    assert reply.steps == []
    assert reply.response.startswith("The builtin provider can only answer")
