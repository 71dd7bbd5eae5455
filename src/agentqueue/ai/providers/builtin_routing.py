"""Deciding what a question asks for, without a language model (see ``builtin`` for the rules).

``route`` turns the latest user message, plus the conversation before it, into an ``Intent``. The
dataset's company, investor and category names are recognised in text by an ``EntityIndex``.
When no rule matches, ``EmbeddingRouter`` (rule 9) compares the message with sentence embeddings
of what the tools do, of the dataset's categories and of its companies' pitches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from agentqueue.ai.embeddings.minilm import EmbeddingModelUnavailable, embed_texts
from agentqueue.ai.providers.builtin_math import (
    ARITHMETIC_EXAMPLES,
    Calculate,
    parse_arithmetic,
    unsupported_math,
    wants_calculation,
)
from agentqueue.ai.providers.builtin_query import (
    CannotAnswer,
    CompanySearch,
    DatasetOverview,
    Found,
    parse_query,
)
from agentqueue.ai.providers.builtin_smalltalk import SmallTalk, small_talk, strip_greeting
from agentqueue.ai.tools.dataset import (
    CATEGORY_ALIASES,
    Dataset,
    category_key,
    plain_category_key,
)
from agentqueue.ai.types import ChatMessage

if TYPE_CHECKING:
    from agentqueue.ai.embeddings.encoder import Vectors

log = logging.getLogger(__name__)

EntityKind = Literal["company", "investor", "category", "founder"]

__all__ = ["Calculate", "CompanySearch", "DatasetOverview", "SmallTalk"]


@dataclass(frozen=True)
class InvestorDeals:
    investor: str


@dataclass(frozen=True)
class CategoryCompanies:
    category: str


@dataclass(frozen=True)
class CompanyDetails:
    name: str


@dataclass(frozen=True)
class NthOfListing:
    """A follow-up ("the first one") about a list the previous question asked for."""

    listing: InvestorDeals | CategoryCompanies | CompanySearch
    index: int  # 0-based; -1 is the last


@dataclass(frozen=True)
class Unanswerable:
    reason: str | None = None  # set when we understood the question but cannot answer it


Intent = (
    Calculate
    | InvestorDeals
    | CategoryCompanies
    | CompanyDetails
    | NthOfListing
    | CompanySearch
    | DatasetOverview
    | SmallTalk
    | Unanswerable
)


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    kind: EntityKind
    name: str  # canonical, as written in the dataset


_WORD = re.compile(r"[a-z][a-z&'-]*")
_COMPANY_SUFFIXES = re.compile(r"[\s,]+(co|inc|llc|ltd|corp|company)\.?$")
# First words too common to stand for a company on their own.
_COMMON_WORDS = frozenset(
    {"the", "this", "that", "best", "good", "great", "happy", "little", "super", "real", "true",
     "first", "next", "simple", "pure", "your", "their", "smart", "fresh", "daily", "urban",
     "green", "blue", "black", "white", "golden", "bright"}
)  # fmt: skip


# First names that are also everyday words, so never taken for an investor on their own.
_WORD_NAMES = frozenset(
    {"mark", "will", "bill", "grace", "rose", "may", "june", "april", "august", "art", "pat",
     "sue", "faith", "hope", "joy", "max", "rich", "dawn", "amber", "jack", "frank", "earnest",
     "summer", "sunny", "chase", "hunter", "miles", "page", "gene", "ray", "sky", "star"}
)  # fmt: skip


@dataclass(frozen=True)
class CompanyProfile:
    name: str
    category: str
    description: str


@dataclass
class EntityIndex:
    """Finds the dataset's company, investor and category names in free text."""

    aliases: list[tuple[re.Pattern[str], EntityKind, str]] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)  # category_key -> name
    investors: list[str] = field(default_factory=list)
    profiles: list[CompanyProfile] = field(default_factory=list)  # for the embedding fallback
    known: frozenset[str] = frozenset()  # category keys, for aliases ("tech" -> Technology)

    @classmethod
    def from_dataset(cls, dataset: Dataset | None) -> EntityIndex:
        index = cls()
        if dataset is None:
            return index
        index.categories = {plain_category_key(c): c for c in dataset.categories}
        index.known = frozenset(index.categories)
        index.investors = dataset.investors
        index.profiles = [
            CompanyProfile(
                str(row["company"]),
                str(row.get("category") or ""),
                " ".join(str(row.get("description") or "").split()),
            )
            for row in dataset.rows
        ]
        for category in dataset.categories:
            index._alias(category.casefold(), "category", category)  # multi-word categories
        for alias in CATEGORY_ALIASES:
            named = index.category(alias)
            if " " in alias and named:
                index._alias(alias, "category", named)  # "personal care", "food and beverage"
        index._add_companies(dataset.companies)
        index._add_investors(dataset.investors)
        founders = [str(row["founder"]) for row in dataset.rows if row.get("founder")]
        for founder in founders:
            index._alias(founder.casefold(), "founder", founder)
        return index

    def _alias(self, alias: str, kind: EntityKind, name: str) -> None:
        if alias.strip():
            pattern = re.compile(r"(?<![\w])" + re.escape(alias.strip()) + r"(?![\w])")
            self.aliases.append((pattern, kind, name))

    def _add_companies(self, companies: list[str]) -> None:
        first_words: dict[str, list[str]] = {}
        for name in companies:
            full = name.casefold().strip()
            short = _COMPANY_SUFFIXES.sub("", full.rstrip("."))
            for alias in {full, full.rstrip("."), short}:
                self._alias(alias, "company", name)
            first = short.split()[0] if short.split() else ""
            first_words.setdefault(first, []).append(name)
        for first, names in first_words.items():
            usable = (
                len(names) == 1
                and len(first) >= 4
                and first not in _COMMON_WORDS
                and self.category(first) is None
            )
            if usable:
                self._alias(first, "company", names[0])

    def _add_investors(self, investors: list[str]) -> None:
        last_names: dict[str, list[str]] = {}
        first_names: dict[str, list[str]] = {}
        for name in investors:
            self._alias(name.casefold(), "investor", name)
            words = name.casefold().split()
            last_names.setdefault(words[-1], []).append(name)
            if len(words) > 1:
                first_names.setdefault(words[0], []).append(name)
        for last, names in last_names.items():
            if len(names) == 1 and len(last) >= 4 and last != names[0].casefold():
                self._alias(last, "investor", names[0])
        for first, names in first_names.items():  # "Tobias's deals"; not "mark", a word
            if len(names) == 1 and len(first) >= 4 and first not in _WORD_NAMES:
                self._alias(first, "investor", names[0])

    def mentions(self, text: str) -> list[Mention]:
        """Entities named in ``text``, in order of appearance, longest match winning overlaps."""
        folded = text.casefold()
        found: list[Mention] = []
        for pattern, kind, name in self.aliases:
            for match in pattern.finditer(folded):
                found.append(Mention(match.start(), match.end(), kind, name))
        for match in _WORD.finditer(folded):
            category = self.category(match.group(0))
            if category:
                found.append(Mention(match.start(), match.end(), "category", category))
        found.sort(key=lambda m: (m.start, -(m.end - m.start)))
        chosen: list[Mention] = []
        for mention in found:
            if not chosen or mention.start >= chosen[-1].end:
                chosen.append(mention)
        return chosen

    def category(self, word: str) -> str | None:
        return self.categories.get(category_key(word, self.known or None))


# --- arithmetic (see builtin_math) ----------------------------------------------------------


def _arithmetic(message: str) -> Intent | None:
    unsupported = unsupported_math(message)
    calc = None if unsupported else parse_arithmetic(message)
    if calc is not None:
        return calc
    if unsupported:
        return Unanswerable(
            f"The calculator cannot do that ({unsupported}): it knows + - * / ** % ( ), "
            "percentages, square and cube roots and powers."
        )
    if wants_calculation(message) and any(ch.isdigit() for ch in message):
        rest = re.split(r"(?i)\b(?:calculate|calc|compute|evaluate|work out|figure out)\b", message)
        return Calculate(rest[-1].strip(" :?.!"))  # the calculator says what it cannot evaluate
    return None


# --- follow-ups -----------------------------------------------------------------------------

_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7,
    "ninth": 8, "9th": 8, "tenth": 9, "10th": 9, "last": -1,
}  # fmt: skip
_ORDINAL = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\b", re.IGNORECASE)
_NUMBERED = re.compile(r"(?:\bnumber|\bno\.|#)\s*(\d{1,2})\b", re.IGNORECASE)
_REFERENCE = re.compile(
    r"\b(tell me more|more about|more details|more info|details (?:on|about)|"
    r"about (?:it|that|this|them|that one|this one)|that one|this one|that company)\b",
    re.IGNORECASE,
)


def followup_index(message: str) -> int | None:
    """Which item a follow-up refers to (0-based, -1 = last), or None if it is not a follow-up."""
    match = _ORDINAL.search(message)
    if match:
        return _ORDINALS[match.group(1).casefold()]
    numbered = _NUMBERED.search(message)
    if numbered and int(numbered.group(1)) >= 1:
        return int(numbered.group(1)) - 1
    if _REFERENCE.search(message):
        return 0
    return None


def _pick(items: list[str], index: int) -> str | None:
    if not items or index >= len(items):
        return None
    return items[index]


def _resolve_followup(index: int, history: list[ChatMessage], entities: EntityIndex) -> Intent:
    """Resolve "the first one" against the conversation, newest message first.

    An assistant answer that names enough companies gives the n-th of them; a user question
    that asked for a list (an investor's deals, a category) gives the n-th item of that list.
    """
    for message in reversed(history):
        if message.role == "assistant" and message.content and not message.tool_calls:
            mentions = entities.mentions(message.content)
            name = _pick(_unique(m.name for m in mentions if m.kind == "company"), index)
            if name:
                return CompanyDetails(name)
        elif message.role == "user":
            previous = _route_fresh(message.content, entities)
            if isinstance(previous, InvestorDeals | CategoryCompanies):
                return NthOfListing(previous, index)
            if isinstance(previous, CompanySearch) and previous.ask in ("list", "top", "count"):
                return NthOfListing(previous, index)
            if isinstance(previous, CompanyDetails) and index in (0, -1):
                return previous
    return Unanswerable(
        "I could not tell what that refers to: no earlier message in the conversation names "
        "a company from the dataset or asks for a list of them."
    )


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen


# --- routing --------------------------------------------------------------------------------

_NAME = r"(?P<name>[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3})"
_INVESTOR_PATTERNS = [
    re.compile(r"\bdeals?\b[^?.!]*?\b(?:made by|by|did|from|of|with)\s+" + _NAME),
    re.compile(r"\b(?:did|has|have)\s+" + _NAME + r"\s+(?:invest|make|made|do|back|fund)"),
    re.compile(_NAME + r"'s\s+(?:deals|investments)"),
]
_CATEGORY_NOUN = r"(?:companies|company|startups?|businesses|brands)"
_CATEGORY_PHRASE = re.compile(r"\b(?P<cat>[a-z][a-z&-]*)\s+" + _CATEGORY_NOUN + r"\b")
_SHOW_CATEGORY = re.compile(
    r"\b(?:show me|show|list|find|give me)\s+(?:all\s+)?(?:the\s+)?(?P<cat>[a-z][a-z&-]*)"
    r"(?:\s+" + _CATEGORY_NOUN + r")?\b"
)
_NOT_CATEGORIES = frozenset(
    {"the", "all", "any", "which", "what", "some", "many", "other", "these", "those", "more",
     "deals", "deal", "me", "of", "in"}
)  # fmt: skip


def _explicit_investor(message: str) -> str | None:
    for pattern in _INVESTOR_PATTERNS:
        match = pattern.search(message)
        if match:
            return re.sub(r"'s$", "", match.group("name")).strip(" .")
    return None


def _explicit_category(message: str, entities: EntityIndex) -> str | None:
    folded = message.casefold()
    for pattern in (_CATEGORY_PHRASE, _SHOW_CATEGORY):
        for match in pattern.finditer(folded):
            known = entities.category(match.group("cat"))
            if known:
                return known
    if any(m.kind == "category" for m in entities.mentions(message)):
        return None  # "list the companies in the fitness category": rule 7 finds Fitness
    show = _SHOW_CATEGORY.search(folded)
    if (
        show
        and re.search(_CATEGORY_NOUN, show.group(0))
        and show.group("cat") not in _NOT_CATEGORIES
        and not re.fullmatch(_CATEGORY_NOUN, show.group("cat"))
    ):
        return show.group("cat")  # "show me robot companies": searched, honestly not found
    return None


# What people ask about companies that the dataset does not record: said so, never guessed.
_NOT_RECORDED: list[tuple[str, str]] = [
    (r"\b(revenue|revenues|sales|turnover|income|profits?|profitable|margins?|earnings)\b",
     "revenue or profits"),
    (r"\b(valuation|valuations|valued|worth|net worth|market cap)\b", "valuations or net worth"),
    (r"\b(market share|competitors?|market size)\b", "market data"),
    (r"\bwhy\b", "the reasons behind pitches and deals"),
    (r"\b(most successful|least successful|will (?:be|succeed|fail|grow|make)|going to|predict|"
     r"future|best|worst|should i|recommend|opinion|favou?rite)\b",
     "opinions or predictions, only facts from the show"),
    (r"\b(websites?|urls?|e-?mails?|phone|phone numbers?|contact|address|social media)\b",
     "contact details or websites"),
    (r"\b(located|location|headquarter(?:s|ed)?|based in|which city|what city|which country|"
     r"what country|where (?:is|are|was|were)\b.*\b(?:from|based))\b", "locations"),
    (r"\b(employees|staff|headcount|team size)\b", "employee numbers"),
    (r"\b(stock|share price|ipo|public|acquired|acquisition|bankrupt|still in business|"
     r"out of business|still around|today)\b", "what happened to companies after the show"),
    (r"\b(how old|age|born|birthday|gender|married|nationality|youngest|oldest)\b",
     "personal details of people"),
    (r"\b(?:in|since|from|during|before|after|of|year)\s+(?:19|20)\d{2}\b|\b(what|which) year\b|"
     r"\bwhen (?:was|were|did|is)\b.*\b(?:founded|started|launch(?:ed)?|created|begin|began|"
     r"incorporated|open(?:ed)?)\b|\b(dates?|months?|air(?:ed)? date|years?|launch(?:ed)?)\b",
     "years or dates (only season and episode numbers)"),
    (r"\b(rating|ratings|reviews?|stars|customers|users|downloads)\b", "reviews or customers"),
    (r"\b(prices?|costs?|how much does .* cost)\b", "product prices"),
]  # fmt: skip
_NOT_RECORDED_PATTERNS = [(re.compile(p), what) for p, what in _NOT_RECORDED]
_DATASET_WORDS = re.compile(
    r"\b(compan(?:y|ies)|startups?|business(?:es)?|brands?|deals?|investors?|sharks?|founders?|"
    r"pitch(?:es)?|dataset|season|episode|entrepreneurs?)\b"
)
RECORDED = (
    "For each company the dataset has its category, founder, ask (amount and equity offered), "
    "deal (amount, equity and investors, or none), season, episode and a one-line pitch."
)


def not_recorded(message: str, mentions: list[Mention]) -> str | None:
    """What a dataset question asks for that the dataset does not have, if anything."""
    folded = message.casefold()
    if not mentions and not _DATASET_WORDS.search(folded):
        return None
    for pattern, what in _NOT_RECORDED_PATTERNS:
        if pattern.search(folded):
            return f"The dataset does not record {what}. {RECORDED}"
    return None


# Arithmetic whose operand is a dataset figure ("10% of Quillstack's ask").
_DANGLING_ARITHMETIC = re.compile(
    r"\d\s*(?:(?:%|percent)\s+of|(?:times|divided by|plus|minus|multiplied by)\b|[+*/×÷])\s*"
    r"(?![\s\d(.$-])"
)
# Figures derived from the dataset's own ("what percentage of companies got a deal?", "more
# than they asked for").
_DERIVED = re.compile(
    r"\b(?:what|which)\s+(percent|percentage|proportion|fraction|ratio|share)\s+of\b|"
    r"\bthan\s+(?:they|it|what they|the ask|their ask|its ask|asked|requested|offered)\b"
)
_RANK_SUBJECT = re.compile(
    r"\b(?:which|what)\s+(season|episode|founder|year|month)s?\b.*\b(most|least|fewest|biggest|"
    r"largest|highest|lowest|best|worst)\b|"
    r"\b(?:which|what)\s+(categor)(?:y|ies)\b.*\b(most|least|biggest|largest|highest|lowest)\b"
    r".*\b(money|raised|funding|invested|investment|deal amount|amount|dollars|equity|asked)\b"
)
# Money per investor: joint deals are not split between their investors, so no total is honest.
_MONEY_PER_INVESTOR = re.compile(
    r"\b(?:who|which (?:investor|shark|backer))\b.*\b(?:most|least|more|less)\b.*"
    r"\b(?:money|dollars|cash|amount|capital)\b"
)
_POSSESSIVE = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)'s\b")
_NOT_NAMES = frozenset(
    {"what", "who", "that", "it", "there", "here", "let", "where", "how", "when", "today",
     "one", "he", "she", "this", "everyone", "nobody", "somebody", "someone", "anyone", "which"}
)  # fmt: skip


def _unknown_name(message: str, mentions: list[Mention]) -> str | None:
    """A capitalised name with a possessive ("Tobias's deals") that the dataset does not have."""
    folded = message.casefold()
    for match in _POSSESSIVE.finditer(message):
        name = match.group(1)
        if name.casefold() in _NOT_NAMES or name.split()[0].casefold() in _NOT_NAMES:
            continue
        start = match.start(1)
        inside = any(m.start <= start < m.end for m in mentions)
        if not inside and folded[start : start + len(name)] == name.casefold():
            return name
    return None


def _found(mentions: list[Mention]) -> Found:
    def first(kind: EntityKind) -> str | None:
        return next((m.name for m in mentions if m.kind == kind), None)

    investors = list(dict.fromkeys(m.name for m in mentions if m.kind == "investor"))
    categories = list(dict.fromkeys(m.name for m in mentions if m.kind == "category"))
    return Found(
        category=first("category"),
        other_categories=tuple(categories[1:]),
        investor=investors[0] if investors else None,
        other_investors=tuple(investors[1:]),
        founder=first("founder"),
        company=first("company"),
    )


def _route_fresh(message: str, entities: EntityIndex) -> Intent:
    """Route a message on its own words, without looking at the conversation."""
    talk = small_talk(message)
    if talk is not None:
        return talk
    message = strip_greeting(message)
    mentions = entities.mentions(message)
    missing = not_recorded(message, mentions)
    if missing:
        return Unanswerable(missing)
    folded = message.casefold()
    if mentions and _DANGLING_ARITHMETIC.search(folded):
        return Unanswerable(
            "I cannot do arithmetic with the dataset's figures in one step: ask for the figure "
            "first (for example the company's record), then ask the calculation with it."
        )
    derived = _DERIVED.search(folded)
    if derived and (mentions or _DATASET_WORDS.search(folded)):
        return Unanswerable(
            "I cannot compute "
            + ("percentages or ratios of" if derived.group(1) else "comparisons between")
            + " the dataset's own figures; I can list and count companies, and rank them by "
            "their ask, deal or equity."
        )
    unknown = _unknown_name(message, mentions)
    if unknown:
        return Unanswerable(
            f"I do not know {unknown} from the dataset. Its investors are: "
            f"{', '.join(entities.investors)}."
        )
    if re.search(r"\bhow many episodes\b", folded):
        return Unanswerable(
            "The dataset gives each pitch's season and episode number, not how many episodes "
            "there were."
        )
    if _MONEY_PER_INVESTOR.search(folded):
        return Unanswerable(
            "I cannot rank investors by money: the dataset gives a deal's amount, not each "
            "investor's share of a joint deal. I can rank them by number of deals."
        )
    ranked = _RANK_SUBJECT.search(folded)
    if ranked:
        what = f"{ranked.group(1)}s" if ranked.group(1) else "categories"
        return Unanswerable(
            f"I cannot rank {what}: I can list and count companies (by category, "
            "investor, deal, amounts, equity, season and episode) and rank companies by their "
            "ask, deal or equity."
        )
    query = parse_query(message, _found(mentions))
    if isinstance(query, CannotAnswer):
        return Unanswerable(query.reason)
    if query is not None:
        return query
    arithmetic = _arithmetic(message)
    if arithmetic is not None:
        return arithmetic
    investors = [m.name for m in mentions if m.kind == "investor"]
    companies = [m.name for m in mentions if m.kind == "company"]
    if companies and investors:
        return CompanyDetails(companies[0])  # "did Mark Cuban invest in Snoutly?": its record
    if investors:
        return InvestorDeals(investors[0])
    if companies:  # before "deals ... did <Name>" and "the pet company Snoutly"
        return CompanyDetails(companies[0])
    category = _explicit_category(message, entities)
    if category:
        return CategoryCompanies(category)
    explicit_investor = _explicit_investor(message)
    if explicit_investor:
        return InvestorDeals(explicit_investor)
    categories = [m.name for m in mentions if m.kind == "category"]
    if categories:
        return CategoryCompanies(categories[0])
    return Unanswerable()


def _may_follow_up(intent: Intent) -> bool:
    """A fresh reading that leaves room for "the first one" to mean an earlier answer's."""
    if intent == Unanswerable():
        return True
    return isinstance(intent, CompanySearch) and intent.ask == "list" and not any(
        key in intent.arguments for key in ("filters", "category", "investor", "founder")
    )


def route(message: str, history: list[ChatMessage], entities: EntityIndex) -> Intent:
    """What the latest user message asks for, resolving follow-ups against ``history``."""
    fresh = _route_fresh(message, entities)
    index = followup_index(message)
    if index is not None and not entities.mentions(message) and _may_follow_up(fresh):
        return _resolve_followup(index, history, entities)
    return fresh


# --- rule 9: the embedding fallback ---------------------------------------------------------

# What a question for each kind of tool looks like, with no names in it. A message is compared
# with every example; a kind's similarity is that of its closest example.
INTENT_EXAMPLES: dict[str, tuple[str, ...]] = {
    "companies": (
        "Which companies are in this category?",
        "List the startups in an industry.",
        "Show me businesses that sell a kind of product.",
        "Are there any companies that make these products?",
        "Tell me about the company that makes this product.",
        "Who makes this product?",
        "Which company sells this?",
        "Who founded this startup and what deal did it get?",
        "What does this company sell?",
    ),
    "investor": (
        "Which deals did this investor make?",
        "What companies did this person invest in?",
        "Which startups did this shark back?",
    ),
    "calculator": (
        "Calculate this number.",
        "What is 15 percent of 80?",
        "Add these numbers together.",
    ),
}
# Cosine similarity (all-MiniLM-L6-v2) the closest example must reach for the message to count as
# that kind of question. Calibrated on paraphrases and off-topic questions (tests/ai): dataset
# questions the rules miss score 0.35-0.6 against "companies", off-topic requests ("write a poem",
# "translate ...", "what's the weather") below 0.3; "investor" and "calculator" need more because
# questions about money or numbers in general come close to them.
INTENT_THRESHOLDS = {"companies": 0.35, "investor": 0.60, "calculator": 0.50}
# A "companies" question is then resolved to a company or a category, or to neither:
# - a company when the message is this close to its pitch (the dataset's description) and
#   this much closer than to any other company's pitch;
COMPANY_THRESHOLD, COMPANY_MARGIN = 0.55, 0.15
# - else a category when the message is this close to "<category> companies" and this much
#   closer than to any other category.
CATEGORY_THRESHOLD, CATEGORY_MARGIN = 0.40, 0.08

_TARGET_CACHE: dict[tuple[str, ...], Vectors] = {}  # texts -> vectors, shared by all routers
_TARGET_CACHE_MAX = 8


async def _embed_targets(texts: tuple[str, ...]) -> Vectors:
    vectors = _TARGET_CACHE.get(texts)
    if vectors is None:
        vectors = await embed_texts(texts)
        if len(_TARGET_CACHE) >= _TARGET_CACHE_MAX:
            _TARGET_CACHE.clear()
        _TARGET_CACHE[texts] = vectors
    return vectors


@dataclass(frozen=True)
class _Targets:
    kinds: list[str]  # the kind of each intent example
    examples: Vectors
    categories: list[str]
    category_vectors: Vectors
    companies: list[str]
    company_vectors: Vectors


def _best_two(similarities: Vectors) -> tuple[int, float, float]:
    """Index and similarity of the best match, and its lead over the runner-up."""
    order = (-similarities).argsort()
    best = float(similarities[order[0]])
    runner_up = float(similarities[order[1]]) if len(order) > 1 else -1.0
    return int(order[0]), best, best - runner_up


class EmbeddingRouter:
    """Rule 9: route a message that no rule understood by sentence-embedding similarity.

    ``route`` returns None when the message is not close enough to any kind of dataset or
    arithmetic question (rule 8, the honest "I can't", stands). A message that is close to a
    kind of question but whose argument cannot be resolved (no investor named, no expression,
    no category or company clearly meant) gets an ``Unanswerable`` saying so: the router never
    guesses an argument. Without the embedding model installed it always returns None.
    """

    def __init__(self, entities: EntityIndex) -> None:
        self._entities = entities
        self._targets: _Targets | None = None
        self._unavailable = False

    async def route(self, message: str) -> Intent | None:
        if self._unavailable or not message.strip() or not self._entities.profiles:
            return None
        try:
            targets = await self._load_targets()
            vector = (await embed_texts([message]))[0]
        except EmbeddingModelUnavailable as exc:
            log.warning("embedding fallback for the builtin provider is off: %s", exc)
            self._unavailable = True
            return None
        return self.decide(vector, targets)

    async def _load_targets(self) -> _Targets:
        if self._targets is None:
            kinds = [kind for kind, texts in INTENT_EXAMPLES.items() for _ in texts]
            examples = [text for texts in INTENT_EXAMPLES.values() for text in texts]
            categories = list(self._entities.categories.values())
            profiles = [p for p in self._entities.profiles if p.description]
            vectors = await _embed_targets(
                tuple(examples)
                + tuple(f"{category} companies" for category in categories)
                + tuple(p.description for p in profiles)
            )
            n, m = len(examples), len(categories)
            self._targets = _Targets(
                kinds=kinds,
                examples=vectors[:n],
                categories=categories,
                category_vectors=vectors[n : n + m],
                companies=[p.name for p in profiles],
                company_vectors=vectors[n + m :],
            )
        return self._targets

    def decide(self, vector: Vectors, targets: _Targets) -> Intent | None:
        kind_scores: dict[str, float] = {}
        for kind, similarity in zip(targets.kinds, targets.examples @ vector, strict=True):
            kind_scores[kind] = max(kind_scores.get(kind, -1.0), float(similarity))
        kind = max(kind_scores, key=lambda k: kind_scores[k])
        log.debug("embedding fallback: intent similarities %s", kind_scores)
        if kind_scores[kind] < INTENT_THRESHOLDS[kind]:
            return None
        if kind == "investor":
            names = self._entities.investors
            example = f' (for example "What deals did {names[0]} make?")' if names else ""
            listed = f" The dataset's investors are: {', '.join(names)}." if names else ""
            return Unanswerable(
                "That looks like a question about investors' deals, but it names no investor "
                f"from the dataset, and I can only list the deals of a named investor{example}."
                + listed
            )
        if kind == "calculator":
            return Unanswerable(
                "That looks like arithmetic, but I found no expression to calculate: write it "
                f"with its figures, for example {ARITHMETIC_EXAMPLES}."
            )
        if len(targets.companies):
            index, similarity, lead = _best_two(targets.company_vectors @ vector)
            log.debug("embedding fallback: company %s %.3f (+%.3f)", index, similarity, lead)
            if similarity >= COMPANY_THRESHOLD and lead >= COMPANY_MARGIN:
                return CompanyDetails(targets.companies[index])
        if len(targets.categories):
            index, similarity, lead = _best_two(targets.category_vectors @ vector)
            log.debug("embedding fallback: category %s %.3f (+%.3f)", index, similarity, lead)
            if similarity >= CATEGORY_THRESHOLD and lead >= CATEGORY_MARGIN:
                return CategoryCompanies(targets.categories[index])
        return Unanswerable(
            "That looks like a question about the dataset's companies, but I could not tell "
            "which category or company it means. Its categories are: "
            f"{', '.join(sorted(targets.categories))}."
        )
