"""The builtin provider: the offline default. No language model; deterministic rules.

It works like a model that uses tools: for a question it first answers with a tool call, and when
the tool's result comes back (as a ``tool`` message) it composes a plain, factual answer from that
output alone. Replies carry ``model="builtin-rules"`` and zero tokens.

Routing of the latest user message, first rule that matches wins:

1. Follow-up. A message naming no dataset entity but referring back ("the first one", "the
   second", "number 3", "the last one", "tell me more about it") resolves against the
   conversation, newest message first: an assistant answer naming enough companies gives its
   n-th company (in order of appearance); a user question that asked for a list (an investor's
   deals, a category) has that list fetched again and its n-th company looked up.
2. Arithmetic. A run of numbers and operators (``+ - * / // ** % ^ ( )``) such as
   "Calculate 100000 / 0.10" -> ``calculator``. After "calculate/compute/evaluate", whatever
   follows is passed on, so the calculator can say what it cannot evaluate.
3. A dataset investor named in the message (full name, or a unique last name) ->
   ``search_deals_by_investor``.
4. "<category> companies/startups/businesses/brands" or "show me/list/find <category>" with a
   dataset category (case-insensitive, singular or plural: "foods" -> Food) ->
   ``search_companies_by_category``. "show me <word> companies" with an unknown word searches
   anyway, and the answer says no such category exists and lists the real ones.
5. "deals by/of/from <Name>", "what deals did <Name> make", "<Name>'s deals" for a name not in the
   dataset -> ``search_deals_by_investor`` (which honestly finds nothing).
6. A dataset company named in the message (full name, or its distinctive first word) ->
   ``get_company``.
7. A dataset category word anywhere -> ``search_companies_by_category``.
8. Otherwise: an honest answer that the builtin provider can only answer dataset questions and
   arithmetic, and that setting ``OPENAI_API_KEY`` (optionally ``OPENAI_BASE_URL``,
   ``OPENAI_MODEL``) enables a language model.

A rule whose tool is not among the tools offered to the provider is treated as rule 8.
"""

from __future__ import annotations

from agentqueue.ai.providers.builtin_answers import Exchange, compose, nth_company
from agentqueue.ai.providers.builtin_routing import (
    Calculate,
    CategoryCompanies,
    CompanyDetails,
    EntityIndex,
    Intent,
    InvestorDeals,
    NthOfListing,
    Unanswerable,
    route,
)
from agentqueue.ai.tools.calculator import CALCULATOR
from agentqueue.ai.tools.dataset import (
    DEFAULT_LIMIT,
    GET_COMPANY,
    MAX_LIMIT,
    SEARCH_COMPANIES_BY_CATEGORY,
    SEARCH_DEALS_BY_INVESTOR,
    Dataset,
)
from agentqueue.ai.types import ChatMessage, ProviderReply, ToolCall, ToolSpec

BUILTIN_MODEL = "builtin-rules"


class BuiltinProvider:
    """Answers dataset and arithmetic questions through the same tool calls a model would make."""

    name = "builtin"

    def __init__(self, dataset: Dataset | None = None) -> None:
        # The dataset is only read to recognise company, investor and category names in text;
        # answers always come from tool output.
        self._entities = EntityIndex.from_dataset(dataset)
        self._categories = list(self._entities.categories.values())

    async def chat(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> ProviderReply:
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if not users:
            return self._reply(content=compose(Unanswerable(), [], self._categories))
        last = users[-1]
        intent = route(messages[last].content, messages[:last], self._entities)
        intent = _require_tools(intent, {t.name for t in tools})
        exchanges = _exchanges(messages[last + 1 :])
        call = _next_call(intent, exchanges)
        if call is not None:
            return self._reply(tool_calls=[call])
        return self._reply(content=compose(intent, exchanges, self._categories))

    async def aclose(self) -> None:
        return None

    def _reply(
        self, content: str | None = None, tool_calls: list[ToolCall] | None = None
    ) -> ProviderReply:
        return ProviderReply(content=content, tool_calls=tool_calls or [], model=BUILTIN_MODEL)


def _tools_for(intent: Intent) -> list[str]:
    if isinstance(intent, Calculate):
        return [CALCULATOR]
    if isinstance(intent, InvestorDeals):
        return [SEARCH_DEALS_BY_INVESTOR]
    if isinstance(intent, CategoryCompanies):
        return [SEARCH_COMPANIES_BY_CATEGORY]
    if isinstance(intent, CompanyDetails):
        return [GET_COMPANY]
    if isinstance(intent, NthOfListing):
        return _tools_for(intent.listing) + [GET_COMPANY]
    return []


def _require_tools(intent: Intent, available: set[str]) -> Intent:
    missing = [name for name in _tools_for(intent) if name not in available]
    if missing:
        return Unanswerable(f"The {missing[0]} tool is not available to this agent.")
    return intent


def _exchanges(after_question: list[ChatMessage]) -> list[Exchange]:
    """Pair the tool calls made since the question with the results that came back."""
    results = {m.tool_call_id: m for m in after_question if m.role == "tool"}
    exchanges: list[Exchange] = []
    for message in after_question:
        for call in message.tool_calls if message.role == "assistant" else []:
            result = results.get(call.id)
            if result is not None:
                exchanges.append(Exchange(call, result.content, result.is_error))
    return exchanges


def _listing_call(
    intent: InvestorDeals | CategoryCompanies, limit: int
) -> tuple[str, dict[str, object]]:
    if isinstance(intent, InvestorDeals):
        return SEARCH_DEALS_BY_INVESTOR, {"investor": intent.investor, "limit": limit}
    return SEARCH_COMPANIES_BY_CATEGORY, {"category": intent.category, "limit": limit}


def _next_call(intent: Intent, exchanges: list[Exchange]) -> ToolCall | None:
    """The next tool call the intent needs, or None when it is ready to be answered."""
    step = len(exchanges)
    wanted: tuple[str, dict[str, object]] | None = None
    if isinstance(intent, Calculate) and step == 0:
        wanted = CALCULATOR, {"expression": intent.expression}
    elif isinstance(intent, InvestorDeals | CategoryCompanies) and step == 0:
        wanted = _listing_call(intent, DEFAULT_LIMIT)
    elif isinstance(intent, CompanyDetails) and step == 0:
        wanted = GET_COMPANY, {"name": intent.name}
    elif isinstance(intent, NthOfListing) and step == 0:
        limit = MAX_LIMIT if intent.index < 0 else max(DEFAULT_LIMIT, intent.index + 1)
        wanted = _listing_call(intent.listing, min(limit, MAX_LIMIT))
    elif isinstance(intent, NthOfListing) and step == 1:
        company = nth_company(exchanges[0], intent.index)
        if company is not None:
            wanted = GET_COMPANY, {"name": company}
    if wanted is None:
        return None
    name, arguments = wanted
    return ToolCall(id=f"builtin-{step + 1}", name=name, arguments=arguments)
