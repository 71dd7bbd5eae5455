"""Dataset questions with conditions, read without a language model.

"Fitness companies without a deal", "tech startups that raised more than $250k", "deals in season
3", "which company asked for the most money?", "how many Pets companies got a deal?", "average
deal size" become one call of the ``search_companies`` tool; "what categories are there?" and
"who are the investors?" one call of ``describe_dataset``. The figures a question gives (an
amount, a percentage, a season) are passed to the tool as they were written; every figure in the
answer comes from the tool's result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Ask = Literal["list", "count", "top", "aggregate"]
Topic = Literal["categories", "investors", "top_investor", "size", "seasons", "columns"]


@dataclass(frozen=True)
class CompanySearch:
    """One ``search_companies`` call and how to answer from it."""

    arguments: dict[str, Any] = field(default_factory=dict)
    ask: Ask = "list"
    description: str = "companies"
    top: int | None = None  # "top 3": how many ranked companies to show (and any tied with them)


@dataclass(frozen=True)
class DatasetOverview:
    """One ``describe_dataset`` call; ``topic`` says which part of it answers the question."""

    topic: Topic


@dataclass(frozen=True)
class CannotAnswer:
    """A dataset question understood well enough to know the tools cannot answer it."""

    reason: str


@dataclass(frozen=True)
class Found:
    """The dataset entities a question names (from ``EntityIndex.mentions``)."""

    category: str | None = None
    investor: str | None = None
    other_investors: tuple[str, ...] = ()  # "deals Mark Cuban and Priya Halvorsen made together"
    other_categories: tuple[str, ...] = ()  # "pets and kids companies": either category
    founder: str | None = None
    company: str | None = None


# --- figures ---------------------------------------------------------------------------------

_MAGNITUDE = {"k": "e3", "thousand": "e3", "m": "e6", "mm": "e6", "mn": "e6", "million": "e6",
              "b": "e9", "bn": "e9", "billion": "e9"}  # fmt: skip
_AMOUNT = (
    r"(?P<cur>\$\s*)?(?P<n>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s*(?P<mag>k|mm|mn|m|bn|b|thousand|million|billion)\b)?(?P<pct>\s*%|\s*percent\b)?"
)
_OPS = [
    (r"more than|over|above|greater than|bigger than|larger than|higher than|exceeding|"
     r"in excess of|north of|>", ">"),
    (r"at least|no less than|not less than|a minimum of|minimum of|>=|≥", ">="),
    (r"less than|under|below|lower than|smaller than|fewer than|beneath|<", "<"),
    (r"at most|no more than|not more than|up to|a maximum of|maximum of|<=|≤", "<="),
    (r"exactly|precisely|=", "="),
]  # fmt: skip
_OP_WORDS = "|".join(f"(?:{words})" for words, _ in _OPS)
_COMPARED = re.compile(rf"(?P<cmp>{_OP_WORDS})\s+(?:of\s+)?{_AMOUNT}")
_OR_MORE = re.compile(
    rf"{_AMOUNT}\s+or\s+(?P<dir>more|greater|higher|above|less|fewer|lower|below)"
)
_BETWEEN = re.compile(
    rf"between\s+{_AMOUNT}\s+and\s+"
    + _AMOUNT.replace("?P<cur>", "?P<cur2>").replace("?P<n>", "?P<n2>")
    .replace("?P<mag>", "?P<mag2>").replace("?P<pct>", "?P<pct2>")
)
_ASKED_FOR = re.compile(
    rf"\b(?:ask(?:ed|ing)?|sought|seeking|want(?:ed|ing)?|request(?:ed|ing)?|offer(?:ed|ing)?)"
    rf"\s+(?:for\s+)?(?:only\s+)?{_AMOUNT}"
)
_GAVE_UP = re.compile(
    rf"\b(?:gave up|gave away|giving up|sold|for)\s+{_AMOUNT}"
    r"(?=\s*(?:equity|stake|of|in (?:the|their) deal|[?.!,]|$))"
)

_ASK_WORDS = re.compile(
    r"\b(ask|asks|asked|asking|sought|seeking|seek|wanted|want|requested|request|pitched for|"
    r"offered|offering|offer)\b"
)
_DEAL_WORDS = re.compile(
    r"\b(raise|raised|raising|got|get|received|receive|deal|deals|invested|investment|"
    r"investments|funding|funded|secured|paid|landed|took|gave up|gave away|stake|stakes|closed)\b"
)
_EQUITY_WORDS = re.compile(r"\b(equity|stake|stakes|share|ownership|percent)\b|%")


def _number(text: str, magnitude: str | None) -> int | float:
    """The figure as written: "5" with "m" is 5e6 (a change of notation, not a calculation)."""
    literal = text.replace(",", "") + (_MAGNITUDE[magnitude] if magnitude else "")
    value = float(literal)
    return int(value) if value.is_integer() else value


def _column(folded: str, start: int, end: int, percent: bool) -> str:
    """Which column a figure is about, from the words nearest before (then after) it."""
    before = folded[max(0, start - 60) : start]
    after = folded[end : end + 30]
    equity = percent or (not re.search(r"\$|\d\s*(k|m|million|thousand)\b", folded[start:end])
                         and bool(_EQUITY_WORDS.search(after)))  # fmt: skip
    asks = [m.end() for m in _ASK_WORDS.finditer(before)]
    deals = [m.end() for m in _DEAL_WORDS.finditer(before)]
    if asks or deals:
        side = "ask" if max(asks, default=-1) > max(deals, default=-1) else "deal"
    elif _ASK_WORDS.search(after):
        side = "ask"
    elif _DEAL_WORDS.search(after):
        side = "deal"
    else:
        side = "deal" if equity else "ask"  # a stake is a deal's; a bare amount is the ask
    return f"{side}_{'equity' if equity else 'amount'}"


def _op(words: str) -> str:
    for pattern, op in _OPS:
        if re.fullmatch(pattern, words):
            return op
    return "="


def amount_filters(folded: str) -> list[dict[str, Any]]:
    """Conditions on ask/deal amounts and equity that a question states."""
    found: list[tuple[int, dict[str, Any]]] = []
    taken: list[tuple[int, int]] = []

    def add(match: re.Match[str], op: str, suffix: str = "") -> None:
        start, end = match.span(f"n{suffix}")
        if any(a <= start < b for a, b in taken) or _is_season(folded, start):
            return
        pct = bool(match.group(f"pct{suffix}"))
        column = _column(folded, start, end, pct)
        value = _number(match.group(f"n{suffix}"), match.group(f"mag{suffix}"))
        found.append((start, {"column": column, "op": op, "value": value}))
        taken.append((start, end))

    for match in _BETWEEN.finditer(folded):
        add(match, ">=")
        # the upper bound shares the lower one's column ("between $100k and $200k")
        upper = dict(found[-1][1]) if found else None
        if upper is not None:
            upper.update(op="<=", value=_number(match.group("n2"), match.group("mag2")))
            found.append((match.start("n2"), upper))
            taken.append(match.span("n2"))
    for match in _COMPARED.finditer(folded):
        add(match, _op(" ".join(match.group("cmp").split())))
    for match in _OR_MORE.finditer(folded):
        add(match, ">=" if match.group("dir") in ("more", "greater", "higher", "above") else "<=")
    for match in _ASKED_FOR.finditer(folded):
        add(match, "=")
    for match in _GAVE_UP.finditer(folded):
        add(match, "=")
    return [condition for _, condition in sorted(found, key=lambda item: item[0])]


# --- seasons and episodes --------------------------------------------------------------------

_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
                  "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10}  # fmt: skip
_CARDINAL_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                   "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
_ORD = (
    r"(?:\d+(?:st|nd|rd|th)?|"
    + "|".join([*_ORDINAL_WORDS, *_CARDINAL_WORDS])
    + r")"
)
_ORD_STRICT = r"(?:\d+(?:st|nd|rd|th)|" + "|".join(_ORDINAL_WORDS) + r")"  # "3rd", "third"


def _ordinal(text: str) -> int:
    text = re.sub(r"(st|nd|rd|th)$", "", text) if text[0].isdigit() else text
    if text.isdigit():
        return int(text)
    return _ORDINAL_WORDS.get(text) or _CARDINAL_WORDS[text]


_SEASON_BEFORE = re.compile(r"\b(seasons?|episodes?|ep\.?)\s*(?:\d+\s*(?:,|and|or|to|-)\s*)*$")


def _is_season(folded: str, start: int) -> bool:
    return bool(_SEASON_BEFORE.search(folded[:start]))


def season_filters(folded: str, unit: str) -> list[dict[str, Any]]:
    """ "season 3", "seasons 1 to 3", "after season 2", "the first season", "episode 5"."""
    plural = rf"{unit}s?"
    patterns: list[tuple[str, list[str]]] = [
        (rf"\b{plural}\s+(?P<a>{_ORD})\s*(?:-|–|to|through|thru|and)\s*(?P<b>{_ORD})\b",
         [">=", "<="]),
        (rf"\bbetween\s+{plural}\s+(?P<a>{_ORD})\s+and\s+(?:{plural}\s+)?(?P<b>{_ORD})\b",
         [">=", "<="]),
        (rf"\b(?:after|later than|past)\s+(?:the\s+)?{plural}\s+(?P<a>{_ORD})\b", [">"]),
        (rf"\b(?:since|from)\s+{plural}\s+(?P<a>{_ORD})\s+on(?:wards?)?\b", [">="]),
        (rf"\b{plural}\s+(?P<a>{_ORD})\s+(?:or|and)\s+(?:later|after|above|beyond|up)\b", [">="]),
        (rf"\b(?:before|earlier than|prior to)\s+(?:the\s+)?{plural}\s+(?P<a>{_ORD})\b", ["<"]),
        (rf"\b{plural}\s+(?P<a>{_ORD})\s+(?:or|and)\s+(?:earlier|before|below)\b", ["<="]),
        (rf"\b(?:the\s+)?first\s+(?P<a>\d+|two|three|four|five)\s+{unit}s\b", ["<="]),
        (rf"\b(?:the\s+)?(?P<a>{_ORD_STRICT})\s+{unit}\b", ["="]),
        (rf"\b{unit}\s*(?:number\s+|no\.?\s*|#\s*)?(?P<a>{_ORD})\b", ["="]),
    ]  # fmt: skip
    counts = {"two": 2, "three": 3, "four": 4, "five": 5}
    for pattern, ops in patterns:
        match = re.search(pattern, folded)
        if not match:
            continue
        values = []
        for key in ("a", "b")[: len(ops)]:
            text = match.group(key)
            values.append(counts[text] if text in counts else _ordinal(text))
        return [{"column": unit, "op": op, "value": v} for op, v in zip(ops, values, strict=True)]
    return []


_COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "several": 2, "multiple": 2}
_INVESTOR_COUNT = re.compile(
    r"\b(?:(?P<more>more than one|several|multiple)|(?P<n>\d+|one|two|three|four))\s+"
    r"(?:different\s+)?(?:investors|sharks|backers)\b|"
    r"\b(?P<single>a single|just one|only one|one)\s+(?:investor|shark|backer)\b"
)


def investor_count_filters(folded: str) -> list[dict[str, Any]]:
    """ "a deal from two investors", "more than one shark", "a single investor"."""
    match = _INVESTOR_COUNT.search(folded)
    if not match:
        return []
    if match.group("more"):
        return [{"column": "investor_count", "op": ">=", "value": 2}]
    if match.group("single"):
        return [{"column": "investor_count", "op": "=", "value": 1}]
    text = match.group("n")
    value = int(text) if text.isdigit() else _COUNTS[text]
    return [{"column": "investor_count", "op": "=", "value": value}]


_EVERY_COMPANY = re.compile(
    r"\b(?:all|every|each)\b(?:\s+(?:the|of the))?\s+(?:compan(?:y|ies)|startups?|businesses)\b"
)
_COUNTED = re.compile(r"\b(compan(?:y|ies)|startups?|business(?:es)?|brands?|pitch(?:es)?|deals?|"
                      r"entries|rows|records)\b")  # fmt: skip


# --- the question ----------------------------------------------------------------------------

_DATASET_NOUNS = re.compile(
    r"\b(compan(?:y|ies)|startups?|businesses|business|brands?|firms?|pitch(?:es)?|deals?|"
    r"investors?|sharks?|categor(?:y|ies)|founders?|entrepreneurs?|seasons?|episodes?|dataset|"
    r"ones|who|which|any|anyone|anybody|someone)\b"
)
_NO_DEAL = re.compile(
    r"\b(?:without|no|not|never|didn'?t|did not|don'?t|failed to|unable to|couldn'?t|could not|"
    r"missed out on|miss(?:ed)?)\b(?:\s+\w+){0,3}?\s+(?:an?\s+)?(?:deal|deals|investment|investor|"
    r"investors|funding|offer|backing|funded|backed|invested|investing)\b|"
    r"\b(?:unfunded|empty[- ]handed|walked away|dealless|"
    r"rejected|turned down|no-deal)\b"
)
_WITH_DEAL = re.compile(
    r"\b(?:got|get|gets|getting|received|landed|closed|struck|secured|made|with|have|has|had|"
    r"won|took)\s+(?:an?\s+|the\s+)?(?:deal|deals|investment|investments|funding|investor|"
    r"investors|backing|offer)\b|\b(?:funded|backed|successful|succeeded|invested in|closed a)\b"
)
_HOW_MANY = re.compile(r"\b(how many|number of|count|how much of)\b")
_SUM = re.compile(r"\b(total|sum|combined|altogether|in all|overall|all together)\b")
_AVERAGE = re.compile(r"\b(average|mean|typical)\b")
_HOW_MUCH = re.compile(r"\bhow much\b")
_TOP = re.compile(r"\b(biggest|largest|highest|most|top|greatest|maximum|max|richest|priciest|"
                  r"smallest|lowest|least|fewest|minimum|min|cheapest|tiniest)\b")  # fmt: skip
_LOW = frozenset({"smallest", "lowest", "least", "fewest", "minimum", "min", "cheapest", "tiniest"})
# Words naming a numeric column a ranking, a total or an average can be about.
_COLUMN_WORDS = re.compile(
    r"\b(deals?|ask|asks|asked|asking|sought|money|amounts?|dollars|cash|raised?|funding|"
    r"invest(?:ed|ment|ments)?|equity|stakes?|share|percentage|ownership|offered|offer)\b"
)
# Of those, the ones only the dataset has (not "money" or "amount", which arithmetic has too).
_SHOW_COLUMNS = re.compile(
    r"\b(deals?|ask|asks|asked|asking|raised|funding|invest(?:ed|ment|ments)|equity|stakes?)\b"
)
_COMPARATORS = re.compile(rf"\b(?:{_OP_WORDS})\b|\bor (?:more|less)\b")
_TOP_N = re.compile(
    r"\btop\s+(\d+)\b|\b(\d+)\s+(?:biggest|largest|highest|smallest|lowest|cheapest|"
    r"richest|greatest)\b"
)

_CATEGORIES_Q = re.compile(
    r"\b(what|which|list|show|name)\b.*\b(categories|category|sectors|industries|kinds of "
    r"compan|types of compan|kinds of startups|types of startups|kinds of businesses)\b|"
    r"\bcategor(?:y|ies)\b.*\b(most|biggest|largest|are there|exist|available|does the)\b"
)
_INVESTORS_Q = re.compile(
    r"\b(who|what|which|list|show|name)\b.*\b(investors|sharks|backers)\b|"
    r"\binvestors?\b.*\b(are there|exist|in the dataset)\b"
)
_TOP_INVESTOR_Q = re.compile(
    r"\b(which|what|who)\b.*\b(investor|shark|backer|person)\b.*\b(most|more|fewest|least)\b.*"
    r"\b(deals|investments|companies|startups)\b|\bwho\b.*\b(invested|made|did)\b.*\bmost\b"
)
_SIZE_Q = re.compile(
    r"\bhow many\b.*\b(companies|startups|rows|entries|records|businesses)\b.*\b(dataset|"
    r"total|in all|are there|altogether|listed|there)\b|\bhow (?:big|large) is the dataset\b"
)
_SEASONS_Q = re.compile(r"\b(how many|which|what)\s+seasons\b")
_COLUMNS_Q = re.compile(
    r"\b(what|which)\b.*\b(columns|fields|information|info|data)\b.*\b(dataset|have|there|"
    r"record|contain)\b|\bwhat(?:'s| is) in the dataset\b|\bdescribe the dataset\b"
)


def overview_topic(folded: str) -> Topic | None:
    if _TOP_INVESTOR_Q.search(folded):
        return "top_investor"
    if _SEASONS_Q.search(folded):
        return "seasons"
    if _SIZE_Q.search(folded) and not re.search(r"\b(deal|without|with|no|season)\b", folded):
        return "size"
    if _COLUMNS_Q.search(folded):
        return "columns"
    if _CATEGORIES_Q.search(folded):
        return "categories"
    if _INVESTORS_Q.search(folded) and not re.search(r"\b(deal|invested in|backed)\b", folded):
        return "investors"
    return None


_OP_LABEL = {">": "over", ">=": "at least", "<": "under", "<=": "at most", "=": "exactly",
             "!=": "other than"}  # fmt: skip


def _money(value: int | float) -> str:
    return f"${value:,}" if isinstance(value, int) else f"${value:,}"


def describe_condition(condition: dict[str, Any]) -> str:
    column, op, value = condition["column"], condition["op"], condition["value"]
    label = _OP_LABEL[op]
    if column == "investor_count":
        return f"with {label} {value} investor{'s' if value != 1 else ''}"
    if column == "ask_amount":
        return f"asking for {label} {_money(value)}"
    if column == "deal_amount":
        return f"with a deal of {label} {_money(value)}"
    if column == "ask_equity":
        return f"offering {label} {value}% equity"
    if column == "deal_equity":
        return f"with a deal for {label} {value}% equity"
    words = {">": "after", ">=": "from", "<": "before", "<=": "up to", "=": "in",
             "!=": "not in"}  # fmt: skip
    return f"{words[op]} {column} {value}"


def describe_between(low: dict[str, Any], high: dict[str, Any]) -> str:
    text = describe_condition(low).replace(" at least ", " between ", 1)
    if low["column"].endswith("amount"):
        return f"{text} and {_money(high['value'])}"
    if low["column"].endswith("equity"):
        return text.replace("% equity", f"% and {high['value']}% equity")
    return f"{text.replace('from ', 'from ', 1)} to {high['value']}"


def _describe(arguments: dict[str, Any]) -> str:
    subject = f"{arguments['category']} companies" if "category" in arguments else "companies"
    if "categories" in arguments:
        subject = f"{' and '.join(arguments['categories'])} companies"
    clauses: list[str] = []
    if "investor" in arguments:
        clauses.append(f"backed by {arguments['investor']}")
    if "investors" in arguments:
        clauses.append(f"backed by {' and '.join(arguments['investors'])} together")
    if "founder" in arguments:
        clauses.append(f"founded by {arguments['founder']}")
    if arguments.get("has_deal") is True and not any(
        f["column"].startswith("deal") for f in arguments.get("filters", [])
    ):
        clauses.append("that got a deal")
    elif arguments.get("has_deal") is False:
        clauses.append("that got no deal")
    filters = list(arguments.get("filters", []))
    for index, condition in enumerate(filters):
        if not condition:
            continue
        following = filters[index + 1] if index + 1 < len(filters) else None
        if (
            condition["op"] == ">="
            and following
            and following["column"] == condition["column"]
            and following["op"] == "<="
        ):
            clauses.append(describe_between(condition, following))
            filters[index + 1] = {}  # described with this one
        else:
            clauses.append(("and " if clauses and clauses[-1][0] in "aow" else "")
                           + describe_condition(condition))  # fmt: skip
    return " ".join([subject, *clauses])


def _target_column(folded: str) -> str:
    """The numeric column a superlative or an aggregate is about."""
    equity = bool(re.search(r"\b(equity|stakes?|share|percentage|percent|ownership)\b", folded))
    asks = [m.end() for m in _ASK_WORDS.finditer(folded)]
    deals = [m.end() for m in _DEAL_WORDS.finditer(folded)]
    side = "ask" if asks and max(asks) > max(deals, default=-1) else "deal"
    if not asks and not deals and re.search(r"\b(money|amount|dollars|cash)\b", folded):
        side = "ask"
    return f"{side}_{'equity' if equity else 'amount'}"


def parse_query(
    message: str, found: Found
) -> CompanySearch | DatasetOverview | CannotAnswer | None:
    """The ``search_companies`` or ``describe_dataset`` call a question needs, if it needs one.

    None when the question is a plain lookup the narrower tools answer (one investor's deals,
    one category, one company) or not a dataset question at all.
    """
    folded = " ".join(message.casefold().replace("’", "'").split())
    if found.company is not None:
        return None  # about one company: get_company shows its whole record
    arguments: dict[str, Any] = {}
    for key in ("category", "investor", "founder"):
        value = getattr(found, key)
        if value is not None:
            arguments[key] = value
    if found.other_categories:
        arguments["categories"] = [arguments.pop("category"), *found.other_categories]
    if found.other_investors:
        arguments["investors"] = [found.investor, *found.other_investors]
        del arguments["investor"]
    filters = amount_filters(folded)
    filters += season_filters(folded, "season") + season_filters(folded, "episode")
    filters += investor_count_filters(folded)
    if filters:
        arguments["filters"] = filters
    no_deal, with_deal = bool(_NO_DEAL.search(folded)), bool(_WITH_DEAL.search(folded))
    if no_deal:
        arguments["has_deal"] = False
    elif with_deal and not {"investor", "investors"} & set(arguments):
        arguments["has_deal"] = True
    if any(f["column"].startswith("deal") for f in filters) and not no_deal:
        arguments["has_deal"] = True

    about_dataset = bool(_DATASET_NOUNS.search(folded)) or bool(
        set(arguments) & {"category", "investor", "investors", "founder"}
    )
    ranks = _AVERAGE.search(folded) or _SUM.search(folded) or _TOP.search(folded)
    if not about_dataset and ranks:
        about_dataset = bool(_SHOW_COLUMNS.search(folded))  # "what is the average ask?"
    if not about_dataset:
        return None
    topic = overview_topic(folded)
    if topic is not None and not arguments:
        return DatasetOverview(topic)
    implied = not {"has_deal", "investor"} & set(arguments)
    if re.search(r"\bdeals\b", folded) and arguments and implied:
        arguments["has_deal"] = True  # "the deals in season 3" are the companies that got one

    ask: Ask = "list"
    top: int | None = None
    column = _target_column(folded)
    summed = _SUM.search(folded) and (
        _HOW_MUCH.search(folded) or _COLUMN_WORDS.search(folded)
    )
    if (_AVERAGE.search(folded) and _COLUMN_WORDS.search(folded)) or summed:
        ask = "aggregate"
        op = "average" if _AVERAGE.search(folded) else "sum"
        if op == "sum" and column.endswith("equity"):
            return CannotAnswer(
                "Equity percentages of different companies do not add up to anything; I can give "
                "their average (\"What is the average deal equity?\")."
            )
        arguments["aggregate"] = {"column": column, "op": op}
        if column.startswith("deal"):
            arguments.setdefault("has_deal", True)
    elif _HOW_MUCH.search(folded) and "investor" in arguments:
        ask = "aggregate"  # "how much did Mark Cuban invest?"
        arguments["aggregate"] = {"column": "deal_amount", "op": "sum"}
    elif _HOW_MANY.search(folded):
        ask = "count"
    elif (superlative := _TOP.search(_COMPARATORS.sub(" ", folded))) and not re.search(
        r"\bmost (recent|popular)\b", folded
    ):
        if not _COLUMN_WORDS.search(folded):
            return None  # "the most successful company": nothing to rank by (see not_recorded)
        ask = "top"
        arguments["sort_by"] = column
        arguments["descending"] = superlative.group(1) not in _LOW
        if column.startswith("deal"):
            arguments["has_deal"] = True
        top_n = _TOP_N.search(folded)
        top = int(top_n.group(1) or top_n.group(2)) if top_n else None
        arguments["limit"] = 50
    if not arguments and ask == "list" and _EVERY_COMPANY.search(folded):
        return CompanySearch({"limit": 50}, "list", "companies")  # "list all companies"
    simple = set(arguments) <= {"category"} or set(arguments) <= {"investor"}
    if ask == "list" and simple:
        return None  # the narrow tools answer these (and "the first one" follows up on them)
    if not arguments and ask == "list":
        return None
    if ask == "count" and not arguments and not _COUNTED.search(folded):
        return None  # "how many episodes ...?": not a count of companies
    if ask in ("list", "count"):
        arguments.setdefault("limit", 50)
    return CompanySearch(arguments, ask, _describe(arguments), top)
