"""Composing the builtin provider's plain-text answers from tool output.

Every sentence is built from what a tool returned; nothing is invented. Dataset tools return the
JSON listing described in ``agentqueue.ai.tools.dataset``; the calculator returns a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentqueue.ai.providers.builtin_math import ARITHMETIC_EXAMPLES
from agentqueue.ai.providers.builtin_routing import (
    Calculate,
    CategoryCompanies,
    CompanyDetails,
    CompanySearch,
    DatasetOverview,
    Intent,
    InvestorDeals,
    NthOfListing,
    SmallTalk,
    Unanswerable,
)
from agentqueue.ai.tools.calculator import format_number
from agentqueue.ai.types import ToolCall

CAPABILITIES = (
    "The builtin provider can only answer questions about the dataset (the deals an investor "
    "made, the companies in a category, a company's details, companies filtered by deal, "
    "amount, equity, season or episode) and arithmetic, because it runs without a language "
    "model. Set OPENAI_API_KEY (and optionally OPENAI_BASE_URL and OPENAI_MODEL) to answer "
    "other questions with a language model."
)
WHAT_I_DO = (
    "I'm agentqueue's builtin agent: I run offline, without a language model, so I can do two "
    f"things. Arithmetic, as you would write it ({ARITHMETIC_EXAMPLES}), through the calculator "
    "tool. And questions about the "
    "startup dataset: an investor's deals, the companies in a category, a company's record, "
    "companies with or without a deal, by amount, equity, season or episode, counts, the "
    "biggest deals, totals and averages. For anything else, set OPENAI_API_KEY to use a "
    "language model."
)
SMALL_TALK = {
    "greeting": "Hello! " + WHAT_I_DO,
    "capabilities": WHAT_I_DO,
    "who_are_you": WHAT_I_DO,
    "how_are_you": "I'm a set of rules, so always the same, thanks. " + WHAT_I_DO,
    "thanks": "You're welcome. Ask me another calculation or a question about the dataset.",
    "farewell": "Goodbye!",
}

Row = dict[str, Any]


@dataclass(frozen=True)
class Exchange:
    """One tool call the builtin provider made and what came back."""

    call: ToolCall
    content: str
    is_error: bool

    @property
    def error(self) -> str:
        return self.content.removeprefix("Error: ")

    def listing(self) -> tuple[int, list[Row]]:
        data = json.loads(self.content)
        return int(data["total"]), list(data["results"])


def money(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return "$" + format_number(value, thousands=True)
    return str(value)


def percent(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return format_number(value) + "%"
    return str(value)


def _and(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _terms(amount: Any, equity: Any) -> str | None:
    parts = [p for p in (money(amount), percent(equity)) if p]
    return " for ".join(parts) if parts else None


def _deal(row: Row) -> str:
    terms = _terms(row.get("deal_amount"), row.get("deal_equity"))
    investors = row.get("investors") or []
    if not terms and not investors:
        return "No deal."
    source = f" from {_and(investors)}" if investors else ""
    return f"Deal: {terms or 'terms not recorded'}{source}."


def _sentence(text: Any) -> str:
    value = str(text or "").strip()
    return value if not value or value.endswith((".", "!", "?")) else value + "."


def _shown_note(total: int, shown: int) -> str:
    return f"\n(Showing {shown} of {total}.)" if shown < total else ""


def investor_deals_answer(investor: str, total: int, rows: list[Row]) -> str:
    if total == 0:
        return f"I found no deals by {investor} in the dataset."
    lines = [f"{investor} made {_plural(total, 'deal')} in the dataset:"]
    for number, row in enumerate(rows, start=1):
        others = [n for n in row.get("investors") or [] if n.casefold() != investor.casefold()]
        terms = _terms(row.get("deal_amount"), row.get("deal_equity")) or "terms not recorded"
        partners = f" with {_and(others)}" if others else ""
        line = f"{number}. {row['company']} ({row.get('category')}): {terms}{partners}."
        if row.get("description"):
            line += " " + _sentence(row["description"])
        lines.append(line)
    return "\n".join(lines) + _shown_note(total, len(rows))


def category_answer(category: str, total: int, rows: list[Row], categories: list[str]) -> str:
    if total == 0:
        known = f" Its categories are: {', '.join(sorted(categories))}." if categories else ""
        return f"I found no companies in the category {category!r} in the dataset.{known}"
    name = rows[0].get("category") or category
    lines = [f"The dataset has {_plural(total, f'{name} company', f'{name} companies')}:"]
    for number, row in enumerate(rows, start=1):
        pitch = _sentence(row.get("description"))
        lines.append(f"{number}. {row['company']}: {pitch + ' ' if pitch else ''}{_deal(row)}")
    return "\n".join(lines) + _shown_note(total, len(rows))


def company_answer(query: str, total: int, rows: list[Row]) -> str:
    if total == 0:
        return f"I found no company named {query!r} in the dataset."
    if total > 1:
        names = _and([str(r["company"]) for r in rows])
        return f"{_plural(total, 'company', 'companies')} match {query!r}: {names}."
    row = rows[0]
    lines = [f"{row['company']} ({row.get('category')})"]
    if row.get("founder"):
        lines.append(f"Founder: {row['founder']}")
    if row.get("description"):
        lines.append(f"Pitch: {_sentence(row['description'])}")
    asked = _terms(row.get("ask_amount"), row.get("ask_equity"))
    if asked:
        lines.append(f"Asked: {asked}")
    lines.append(_deal(row).removesuffix("."))
    if row.get("season") is not None and row.get("episode") is not None:
        lines.append(f"Season {row['season']}, episode {row['episode']}")
    return "\n".join(lines)


def _ordinal(index: int) -> str:
    if index == -1:
        return "last"
    number = index + 1
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _describe(listing: InvestorDeals | CategoryCompanies | CompanySearch) -> str:
    if isinstance(listing, CompanySearch):
        return listing.description
    if isinstance(listing, InvestorDeals):
        return f"{listing.investor}'s deals"
    return f"{listing.category} companies"


def compose(intent: Intent, exchanges: list[Exchange], categories: list[str]) -> str:
    """The final answer for ``intent`` once its tool calls in ``exchanges`` have run."""
    if isinstance(intent, SmallTalk):
        return SMALL_TALK[intent.kind]
    if isinstance(intent, Unanswerable):
        return f"{intent.reason} {CAPABILITIES}" if intent.reason else CAPABILITIES
    if not exchanges:
        return CAPABILITIES
    first = exchanges[0]
    if isinstance(intent, Calculate):
        shown = intent.display or intent.expression
        if first.is_error:
            return f"I could not calculate {shown}: {first.error}."
        return f"{shown} = {_format_result(first.content)}{intent.unit}"
    if first.is_error:
        return f"I could not search the dataset: {first.error}."
    if isinstance(intent, DatasetOverview):
        return overview_answer(intent, json.loads(first.content))
    if isinstance(intent, CompanySearch):
        return search_answer(intent, json.loads(first.content))
    total, rows = first.listing()
    if isinstance(intent, InvestorDeals):
        return investor_deals_answer(intent.investor, total, rows)
    if isinstance(intent, CategoryCompanies):
        return category_answer(intent.category, total, rows, categories)
    if isinstance(intent, CompanyDetails):
        return company_answer(intent.name, total, rows)
    return _nth_answer(intent, total, exchanges)


def _nth_answer(intent: NthOfListing, total: int, exchanges: list[Exchange]) -> str:
    """The listing ran first; the company lookup ran only if the requested item exists."""
    if len(exchanges) >= 2:
        second = exchanges[1]
        if second.is_error:
            return f"I could not look up that company: {second.error}."
        name = str(second.call.arguments.get("name", ""))
        return company_answer(name, *second.listing())
    wanted = f"so there is no {_ordinal(intent.index)} one"
    if total == 0:
        return f"I found no {_describe(intent.listing)} in the dataset, {wanted}."
    count = _plural(total, "entry", "entries")
    return f"The list of {_describe(intent.listing)} has only {count}, {wanted}."


def _format_result(text: str) -> str:
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return text
    return format_number(value, thousands=True)


def nth_company(exchange: Exchange, index: int) -> str | None:
    """The company at ``index`` of a listing result, if the listing is that long."""
    if exchange.is_error:
        return None
    _, rows = exchange.listing()
    if not rows or index >= len(rows):
        return None
    return str(rows[index]["company"])


def _row_summary(row: Row) -> str:
    parts = [f"{row['company']} ({row.get('category')})"]
    asked = _terms(row.get("ask_amount"), row.get("ask_equity"))
    if asked:
        parts.append(f"asked {asked}")
    deal = _deal(row).removesuffix(".")
    parts.append(deal.replace("Deal: ", "deal: ").replace("No deal", "no deal"))
    if row.get("season") is not None:
        episode = f", episode {row['episode']}" if row.get("episode") is not None else ""
        parts.append(f"season {row['season']}{episode}")
    return "; ".join(parts)


def search_answer(intent: CompanySearch, data: dict[str, Any]) -> str:
    total, rows = int(data["total"]), list(data["results"])
    what = intent.description
    if total == 0:
        return f"The dataset has no {what}."
    if intent.ask == "count":
        names = _and([str(r["company"]) for r in rows])
        return (
            f"The dataset has {_plural(total, what.replace('companies', 'company', 1), what)}: "
            f"{names}.{_shown_note(total, len(rows))}"
        )
    if intent.ask == "aggregate":
        spec = data.get("aggregate") or {}
        column = str(spec.get("column", "")).replace("_", " ")
        value = spec.get("value")
        shown = (money if column.endswith("amount") else percent)(value)
        label = "total" if spec.get("op") == "sum" else "average"
        count = spec.get("count", total)
        counted = _plural(int(count), what.replace("companies", "company", 1), what)
        return f"The {label} {column} of the {counted} is {shown}."
    if intent.ask == "top":
        column = str(intent.arguments.get("sort_by"))
        wanted = intent.top or 1
        last = rows[min(wanted, len(rows)) - 1].get(column)
        # the first ``wanted`` companies, and any tied with the last of them
        ranked = rows[:wanted] + [r for r in rows[wanted:] if r.get(column) == last]
        word = "highest" if intent.arguments.get("descending") else "lowest"
        label = column.replace("_", " ")
        value = (money if column.endswith("amount") else percent)(rows[0].get(column))
        ties = f", {len(ranked)} with ties" if len(ranked) > wanted else ""
        head = (
            f"Among the {what}, the {word} {label} is {value}:"
            if intent.top is None
            else f"The top {wanted} {what} by {label} ({word} first{ties}):"
        )
        lines = [head] + [f"{n}. {_row_summary(r)}" for n, r in enumerate(ranked, start=1)]
        return "\n".join(lines)
    lines = [f"The dataset has {_plural(total, what.replace('companies', 'company', 1), what)}:"]
    lines += [f"{n}. {_row_summary(r)}" for n, r in enumerate(rows, start=1)]
    return "\n".join(lines) + _shown_note(total, len(rows))


def overview_answer(intent: DatasetOverview, data: dict[str, Any]) -> str:
    categories: dict[str, int] = data.get("categories", {})
    investors: dict[str, int] = data.get("deals_by_investor", {})
    if intent.topic == "categories":
        listed = ", ".join(f"{name} ({count})" for name, count in categories.items())
        return f"The dataset's categories, with their number of companies: {listed}."
    if intent.topic == "investors":
        listed = ", ".join(f"{name} ({count})" for name, count in investors.items())
        return f"The dataset's investors, with their number of deals: {listed}."
    if intent.topic == "top_investor":
        if not investors:
            return "The dataset records no deals."
        most = max(investors.values())
        names = [name for name, count in investors.items() if count == most]
        return f"{_and(names)} made the most deals: {_plural(most, 'deal')}."
    if intent.topic == "seasons":
        seasons = [str(s) for s in data.get("seasons", [])]
        return f"The dataset covers seasons {_and(seasons)}."
    if intent.topic == "columns":
        return f"The dataset's columns: {', '.join(data.get('columns', []))}."
    return (
        f"The dataset has {_plural(int(data['companies']), 'company', 'companies')}, "
        f"{data.get('companies_with_a_deal')} of which got a deal."
    )

