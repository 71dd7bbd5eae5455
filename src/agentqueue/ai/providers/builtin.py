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
9. Before rule 8 answers, the embedding fallback (``builtin_routing.EmbeddingRouter``) compares
   the message, with all-MiniLM-L6-v2 sentence embeddings, to examples of each kind of question
   the tools answer (about companies, about an investor's deals, arithmetic). Below that kind's
   similarity threshold (0.35 for companies, 0.60 investor, 0.50 arithmetic) rule 8 stands.
   Above it, a companies question goes to ``get_company`` for the company whose pitch (the
   dataset's description) the message matches with cosine >= 0.55 and a lead of 0.15 over the
   next company ("Who makes the hot sauce kits?" -> Saucery Lab), else to
   ``search_companies_by_category`` for the category whose "<category> companies" it matches
   with cosine >= 0.40 and a lead of 0.08 ("I'm curious about startups that sell snacks" ->
   Food). When no argument clears its bar, and for investor and arithmetic questions (whose
   arguments, a name or an expression, the rules would have found if present), the answer says
   what was understood and what is missing, and is otherwise rule 8's: nothing is guessed.
   Without the model installed, rule 8 answers directly.

A rule whose tool is not among the tools offered to the provider is treated as rule 8.

``embed`` returns all-MiniLM-L6-v2 vectors (384 dimensions, unit length) computed offline with
numpy (``agentqueue.ai.embeddings``), zero tokens.
"""

from __future__ import annotations

import logging
from typing import Any

from agentqueue.ai.embeddings.minilm import MODEL_NAME as EMBEDDING_MODEL
from agentqueue.ai.embeddings.minilm import EmbeddingModelUnavailable, embed_texts
from agentqueue.ai.providers.base import CapabilityUnavailable, TextCallback
from agentqueue.ai.providers.builtin_answers import Exchange, compose, nth_company
from agentqueue.ai.providers.builtin_routing import (
    Calculate,
    CategoryCompanies,
    CompanyDetails,
    CompanySearch,
    DatasetOverview,
    EmbeddingRouter,
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
    DESCRIBE_DATASET,
    GET_COMPANY,
    MAX_LIMIT,
    SEARCH_COMPANIES,
    SEARCH_COMPANIES_BY_CATEGORY,
    SEARCH_DEALS_BY_INVESTOR,
    Dataset,
)
from agentqueue.ai.types import (
    ChatMessage,
    EmbeddingResult,
    ProviderReply,
    ToolCall,
    ToolSpec,
    Usage,
)

BUILTIN_MODEL = "builtin-rules"
log = logging.getLogger(__name__)


class BuiltinProvider:
    """Answers dataset and arithmetic questions through the same tool calls a model would make."""

    name = "builtin"

    def __init__(self, dataset: Dataset | None = None, *, embedding_routing: bool = True) -> None:
        # The dataset is only read to recognise company, investor and category names (and, for
        # the embedding fallback, its categories and pitches) in text; answers always come
        # from tool output.
        self._entities = EntityIndex.from_dataset(dataset)
        self._categories = list(self._entities.categories.values())
        self._router = EmbeddingRouter(self._entities) if embedding_routing else None

    model = BUILTIN_MODEL

    async def chat(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
    ) -> ProviderReply:
        if json_schema is not None:
            raise CapabilityUnavailable(
                "the builtin provider cannot write free-form JSON; set OPENAI_API_KEY or "
                "ANTHROPIC_API_KEY to use a language model"
            )
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if not users:
            return self._reply(content=compose(Unanswerable(), [], self._categories))
        last = users[-1]
        try:
            intent = route(messages[last].content, messages[:last], self._entities)
        except Exception:  # a rule's defect must not fail the job: say it cannot
            log.exception("builtin provider: routing failed")
            intent = Unanswerable()
        if intent == Unanswerable() and self._router is not None:  # rule 9, then rule 8
            intent = await self._router.route(messages[last].content) or intent
        intent = _require_tools(intent, {t.name for t in tools})
        exchanges = _exchanges(messages[last + 1 :])
        call = _next_call(intent, exchanges)
        if call is not None:
            return self._reply(tool_calls=[call])
        content = compose(intent, exchanges, self._categories)
        if on_text is not None:
            await on_text(content)
        return self._reply(content=content)

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        """all-MiniLM-L6-v2 vectors, computed in a worker thread; no tokens are billed.

        ``model`` may be None, this provider's default model or all-MiniLM-L6-v2; another
        embedding model needs a provider that has it.
        """
        if not _is_builtin_embedding_model(model):
            raise CapabilityUnavailable(
                f"the builtin provider embeds only with {EMBEDDING_MODEL}, not {model!r}; set "
                "OPENAI_API_KEY to embed with an OpenAI-compatible embedding model"
            )
        try:
            vectors = await embed_texts(texts) if texts else None
        except EmbeddingModelUnavailable as exc:
            raise CapabilityUnavailable(
                f"{exc}; or set OPENAI_API_KEY to embed with OpenAI"
            ) from exc
        return EmbeddingResult(
            vectors=vectors.tolist() if vectors is not None else [],
            model=EMBEDDING_MODEL,
            usage=Usage(input_tokens=0, output_tokens=0),
        )

    async def aclose(self) -> None:
        return None

    def _reply(
        self, content: str | None = None, tool_calls: list[ToolCall] | None = None
    ) -> ProviderReply:
        return ProviderReply(content=content, tool_calls=tool_calls or [], model=BUILTIN_MODEL)


def _is_builtin_embedding_model(model: str | None) -> bool:
    if model is None or model.strip() in ("", BUILTIN_MODEL):
        return True
    return model.strip().casefold().removeprefix("sentence-transformers/") == (
        EMBEDDING_MODEL.casefold()
    )


def _tools_for(intent: Intent) -> list[str]:
    if isinstance(intent, Calculate):
        return [CALCULATOR]
    if isinstance(intent, InvestorDeals):
        return [SEARCH_DEALS_BY_INVESTOR]
    if isinstance(intent, CategoryCompanies):
        return [SEARCH_COMPANIES_BY_CATEGORY]
    if isinstance(intent, CompanyDetails):
        return [GET_COMPANY]
    if isinstance(intent, CompanySearch):
        return [SEARCH_COMPANIES]
    if isinstance(intent, DatasetOverview):
        return [DESCRIBE_DATASET]
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
    intent: InvestorDeals | CategoryCompanies | CompanySearch, limit: int
) -> tuple[str, dict[str, object]]:
    if isinstance(intent, CompanySearch):
        return SEARCH_COMPANIES, {**intent.arguments, "limit": MAX_LIMIT}
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
    elif isinstance(intent, CompanySearch) and step == 0:
        wanted = SEARCH_COMPANIES, dict(intent.arguments)
    elif isinstance(intent, DatasetOverview) and step == 0:
        wanted = DESCRIBE_DATASET, {}
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
