"""Search tools over a CSV dataset of startups, investors and deals.

The CSV needs the columns ``company``, ``category`` and ``investors`` (names separated by ``;``);
``founder``, ``ask_amount``, ``ask_equity``, ``deal_amount``, ``deal_equity``, ``season``,
``episode`` and ``description`` are used when present, and any other column is passed through.
Lines starting with ``#`` are comments. A file is read once per process and cached.

Tool output is JSON: ``{"total": <rows matched>, "shown": <rows listed>, "results": [...]}``, so a
language model can read it and the builtin provider can compose an answer from it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from agentqueue.ai.tools.base import Tool, ToolError

SEARCH_DEALS_BY_INVESTOR = "search_deals_by_investor"
SEARCH_COMPANIES_BY_CATEGORY = "search_companies_by_category"
GET_COMPANY = "get_company"
SEARCH_COMPANIES = "search_companies"
DESCRIBE_DATASET = "describe_dataset"

REQUIRED_COLUMNS = ("company", "category", "investors")
NUMERIC_COLUMNS = frozenset(
    {"ask_amount", "ask_equity", "deal_amount", "deal_equity", "season", "episode"}
)
# What search_companies can filter on: the numeric columns and how many investors a deal had.
FILTER_COLUMNS = NUMERIC_COLUMNS | {"investor_count"}
DEFAULT_LIMIT = 10
MAX_LIMIT = 50

# Words people use for a category that do not reduce to its name by singularising. An alias is
# only used when the dataset has the category it points to.
CATEGORY_ALIASES = {
    "tech": "technology", "gadget": "technology", "electronic": "technology",
    "software": "technology", "app": "technology", "hardware": "technology",
    "consumer electronic": "technology",
    "children": "kids", "child": "kids", "kid": "kids", "baby": "kids", "toy": "kids",
    "food & beverage": "food", "food and beverage": "food", "f&b": "food", "snack": "food",
    "grocery": "food", "groceries": "food", "drink": "food", "beverage": "food",
    "health & wellness": "health", "wellness": "health", "healthcare": "health",
    "health care": "health", "medical": "health",
    "exercise": "fitness", "sport": "fitness", "workout": "fitness", "gym": "fitness",
    "pet": "pets", "pet product": "pets", "pet care": "pets", "animal": "pets",
    "apparel": "fashion", "clothing": "fashion", "clothe": "fashion", "clothes": "fashion",
    "style": "fashion",
    "household": "home", "home good": "home", "housewares": "home", "houseware": "home",
    "home improvement": "home",
    "cosmetic": "beauty", "skincare": "beauty", "skin care": "beauty", "makeup": "beauty",
    "personal care": "beauty",
}  # fmt: skip

Row = dict[str, Any]


class DatasetError(Exception):
    """The dataset file is missing or does not have the columns the tools need."""


def default_dataset_path() -> Path:
    """The fictional example dataset shipped inside the package."""
    return Path(str(resources.files("agentqueue").joinpath("data", "startups.csv")))


def normalize_name(text: str) -> str:
    """Names compared ignoring case, spacing and punctuation ("Pickle Co." ~ "pickleco")."""
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


def singular(word: str) -> str:
    """A crude singular so "foods", "Food" and "food" compare equal; enough for category names."""
    word = word.casefold().strip()
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def category_key(text: str, known: frozenset[str] | None = None) -> str:
    """A category compared ignoring case, plurals and the aliases above.

    With ``known`` (the keys of the dataset's categories) an alias counts only when it points to
    one of them, so a dataset that has its own "Software" category keeps it.
    """
    words = re.sub(r"[^0-9a-z&]+", " ", text.casefold()).split()
    key = " ".join(singular(w) for w in words)
    if known is not None and key in known:
        return key
    alias = CATEGORY_ALIASES.get(key) or CATEGORY_ALIASES.get(" ".join(words))
    if alias is None:
        return key
    target = " ".join(singular(w) for w in alias.split())
    return target if known is None or target in known else key


def plain_category_key(text: str) -> str:
    """A category's own key (case and plurals ignored), aliases left out."""
    return category_key(text, frozenset())


def _parse_number(text: str) -> int | float | str:
    cleaned = text.replace(",", "").replace("$", "").replace("%", "").strip()
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        return float(cleaned)
    except ValueError:
        return text


def _split_investors(text: str) -> list[str]:
    return [name.strip() for name in re.split(r"[;,]", text) if name.strip()]


def _clean_row(raw: dict[str, str | None]) -> Row:
    row: Row = {}
    for key, value in raw.items():
        if key is None:
            continue
        key = key.strip()
        text = (value or "").strip()
        if key == "investors":
            row[key] = _split_investors(text)
        elif not text:
            row[key] = None
        elif key in NUMERIC_COLUMNS:
            row[key] = _parse_number(text)
        else:
            row[key] = text
    return row


def _data_lines(path: Path) -> Iterator[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.lstrip().startswith("#"):
                yield line


@dataclass(frozen=True)
class Dataset:
    """Rows of the CSV with the lookups the tools and the builtin provider need."""

    path: Path
    rows: tuple[Row, ...]

    @classmethod
    def from_csv(cls, path: str | Path) -> Dataset:
        file = Path(path)
        if not file.is_file():
            raise DatasetError(f"dataset file {str(file)!r} does not exist")
        reader = csv.DictReader(_data_lines(file))
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DatasetError(
                f"dataset {str(file)!r} lacks the column(s) {', '.join(missing)}; "
                f"it needs {', '.join(REQUIRED_COLUMNS)}"
            )
        rows = tuple(_clean_row(raw) for raw in reader)
        return cls(path=file, rows=tuple(r for r in rows if r.get("company")))

    @property
    def companies(self) -> list[str]:
        return [str(row["company"]) for row in self.rows]

    @property
    def investors(self) -> list[str]:
        seen: dict[str, str] = {}
        for row in self.rows:
            for name in row["investors"]:
                seen.setdefault(name.casefold(), name)
        return list(seen.values())

    @property
    def categories(self) -> list[str]:
        seen: dict[str, str] = {}
        for row in self.rows:
            if row.get("category"):
                seen.setdefault(plain_category_key(row["category"]), row["category"])
        return list(seen.values())

    def deals_by_investor(self, investor: str) -> list[Row]:
        """Rows naming the investor; a single name ("Cuban") matches a full one ("Mark Cuban")."""
        wanted = investor.casefold().split()
        if not wanted:
            raise ToolError("investor name is empty")

        def matches(name: str) -> bool:
            words = name.casefold().split()
            return words == wanted or (len(wanted) == 1 and wanted[0] in words)

        return [row for row in self.rows if any(matches(n) for n in row["investors"])]

    @property
    def category_keys(self) -> frozenset[str]:
        return frozenset(plain_category_key(c) for c in self.categories)

    def companies_by_category(self, category: str) -> list[Row]:
        keys = self.category_keys
        wanted = category_key(category, keys)
        if not wanted:
            raise ToolError("category is empty")
        return [r for r in self.rows if category_key(r.get("category") or "", keys) == wanted]

    def find_company(self, name: str) -> list[Row]:
        """Exact name match (ignoring case and punctuation), else names containing the query."""
        wanted = normalize_name(name)
        if not wanted:
            raise ToolError("company name is empty")
        exact = [row for row in self.rows if normalize_name(row["company"]) == wanted]
        if exact:
            return exact
        return [row for row in self.rows if wanted in normalize_name(row["company"])]


    def search(self, criteria: SearchCriteria) -> list[Row]:
        """Rows meeting every criterion, in dataset order unless ``sort_by`` is given."""
        rows = list(self.rows)
        if criteria.category is not None:
            named = {id(r) for r in self.companies_by_category(criteria.category)}
            rows = [r for r in rows if id(r) in named]
        if criteria.categories:
            either = {id(r) for c in criteria.categories for r in self.companies_by_category(c)}
            rows = [r for r in rows if id(r) in either]
        for investor in (criteria.investor, *criteria.investors):
            if investor is not None:
                named = {id(r) for r in self.deals_by_investor(investor)}
                rows = [r for r in rows if id(r) in named]
        if criteria.founder is not None:
            wanted_founder = normalize_name(criteria.founder)
            rows = [r for r in rows if wanted_founder in normalize_name(r.get("founder") or "")]
        if criteria.has_deal is not None:
            rows = [r for r in rows if _has_deal(r) == criteria.has_deal]
        for condition in criteria.filters:
            rows = [r for r in rows if condition.holds(r)]
        if criteria.sort_by is not None:
            column = criteria.sort_by
            rows = [r for r in rows if isinstance(r.get(column), int | float)]
            rows.sort(key=lambda r: r[column], reverse=criteria.descending)
        return rows

    def describe(self) -> dict[str, Any]:
        """What the dataset holds: its columns, and counts by category, investor and season."""
        by_category: dict[str, int] = {}
        by_investor: dict[str, int] = {}
        seasons: set[Any] = set()
        for row in self.rows:
            if row.get("category"):
                by_category[row["category"]] = by_category.get(row["category"], 0) + 1
            for name in row["investors"]:
                by_investor[name] = by_investor.get(name, 0) + 1
            if row.get("season") is not None:
                seasons.add(row["season"])
        columns = sorted({key for row in self.rows for key in row})
        return {
            "companies": len(self.rows),
            "companies_with_a_deal": sum(1 for r in self.rows if _has_deal(r)),
            "columns": columns,
            "categories": dict(sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))),
            "deals_by_investor": dict(sorted(by_investor.items(), key=lambda kv: (-kv[1], kv[0]))),
            "seasons": sorted(seasons, key=str),
        }


def _has_deal(row: Row) -> bool:
    return bool(row.get("investors")) or row.get("deal_amount") is not None


COMPARISONS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Condition:
    """``column op value`` on a numeric column; a row without a value never matches."""

    column: str
    op: str
    value: int | float

    def holds(self, row: Row) -> bool:
        value = len(row["investors"]) if self.column == "investor_count" else row.get(self.column)
        return isinstance(value, int | float) and bool(COMPARISONS[self.op](value, self.value))


@dataclass(frozen=True)
class SearchCriteria:
    category: str | None = None
    investor: str | None = None
    investors: tuple[str, ...] = ()  # every one of them invested
    categories: tuple[str, ...] = ()  # in any of them
    founder: str | None = None
    has_deal: bool | None = None
    filters: tuple[Condition, ...] = ()
    sort_by: str | None = None
    descending: bool = False


def _criteria(args: dict[str, Any]) -> SearchCriteria:
    def text(key: str) -> str | None:
        value = args.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ToolError(f"{key} must be a non-empty string")
        return value.strip()

    has_deal = args.get("has_deal")
    if has_deal is not None and not isinstance(has_deal, bool):
        raise ToolError("has_deal must be true or false")
    conditions = []
    for item in args.get("filters") or []:
        if not isinstance(item, dict):
            raise ToolError("each filter needs column, op and value")
        column, op, value = item.get("column"), item.get("op"), item.get("value")
        if column not in FILTER_COLUMNS:
            raise ToolError(f"filter column must be one of {', '.join(sorted(FILTER_COLUMNS))}")
        if op not in COMPARISONS:
            raise ToolError(f"filter op must be one of {' '.join(COMPARISONS)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError("filter value must be a number")
        conditions.append(Condition(column, op, value))
    either = args.get("categories") or []
    if not isinstance(either, list) or not all(_named(n) for n in either):
        raise ToolError("categories must be a list of names")
    together = args.get("investors") or []
    if not isinstance(together, list) or not all(_named(n) for n in together):
        raise ToolError("investors must be a list of names")
    sort_by = args.get("sort_by")
    if sort_by is not None and sort_by not in NUMERIC_COLUMNS:
        raise ToolError(f"sort_by must be one of {', '.join(sorted(NUMERIC_COLUMNS))}")
    return SearchCriteria(
        category=text("category"),
        investor=text("investor"),
        investors=tuple(n.strip() for n in together),
        categories=tuple(n.strip() for n in either),
        founder=text("founder"),
        has_deal=has_deal,
        filters=tuple(conditions),
        sort_by=sort_by,
        descending=bool(args.get("descending", False)),
    )


def _named(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _aggregate(rows: list[Row], args: dict[str, Any]) -> dict[str, Any] | None:
    spec = args.get("aggregate")
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("column") not in NUMERIC_COLUMNS:
        raise ToolError(f"aggregate.column must be one of {', '.join(sorted(NUMERIC_COLUMNS))}")
    op, column = spec.get("op"), spec["column"]
    values = [r[column] for r in rows if isinstance(r.get(column), int | float)]
    if op == "sum":
        result: int | float | None = sum(values)
    elif op == "average":
        result = round(sum(values) / len(values), 2) if values else None
    else:
        raise ToolError("aggregate.op must be sum or average")
    return {"column": column, "op": op, "value": result, "count": len(values)}


@lru_cache(maxsize=8)
def _load_cached(path: str) -> Dataset:
    return Dataset.from_csv(path)


def load_dataset(path: str | Path | None = None) -> Dataset:
    """Load (once per process) the dataset at ``path``, or the shipped example when None."""
    file = Path(path) if path else default_dataset_path()
    return _load_cached(str(file.expanduser().resolve()))


def listing(rows: list[Row], limit: int = DEFAULT_LIMIT) -> str:
    """The JSON every dataset tool returns."""
    shown = rows[:limit]
    return json.dumps(
        {"total": len(rows), "shown": len(shown), "results": shown}, ensure_ascii=False
    )


def _limit(args: dict[str, Any]) -> int:
    value = args.get("limit", DEFAULT_LIMIT)
    if value < 1:
        raise ToolError("limit must be at least 1")
    return int(min(value, MAX_LIMIT))


_LIMIT_SCHEMA = {
    "type": "integer",
    "description": f"Most rows to list (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).",
}


def dataset_tools(dataset: Dataset) -> list[Tool]:
    """The dataset tools, bound to one dataset."""

    def deals(args: dict[str, Any]) -> str:
        return listing(dataset.deals_by_investor(args["investor"]), _limit(args))

    def by_category(args: dict[str, Any]) -> str:
        return listing(dataset.companies_by_category(args["category"]), _limit(args))

    def company(args: dict[str, Any]) -> str:
        return listing(dataset.find_company(args["name"]), _limit(args))

    def search_companies(args: dict[str, Any]) -> str:
        rows = dataset.search(_criteria(args))
        data = json.loads(listing(rows, _limit(args)))
        aggregate = _aggregate(rows, args)
        if aggregate is not None:
            data["aggregate"] = aggregate
        return json.dumps(data, ensure_ascii=False)

    def describe(args: dict[str, Any]) -> str:
        return json.dumps(dataset.describe(), ensure_ascii=False)

    numeric = sorted(NUMERIC_COLUMNS)

    def schema(key: str, description: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                key: {"type": "string", "description": description},
                "limit": _LIMIT_SCHEMA,
            },
            "required": [key],
            "additionalProperties": False,
        }

    return [
        Tool(
            name=SEARCH_DEALS_BY_INVESTOR,
            description="List the deals (companies invested in) made by an investor.",
            parameters=schema("investor", "The investor's name, for example 'Mark Cuban'."),
            func=deals,
        ),
        Tool(
            name=SEARCH_COMPANIES_BY_CATEGORY,
            description=(
                "List companies in a category. Categories: "
                + ", ".join(sorted(dataset.categories))
                + "."
            ),
            parameters=schema("category", "The category, for example 'Food'."),
            func=by_category,
        ),
        Tool(
            name=GET_COMPANY,
            description="Get the full record of a company: founder, ask, deal, investors, pitch.",
            parameters=schema("name", "The company's name or the start of it."),
            func=company,
        ),
        Tool(
            name=SEARCH_COMPANIES,
            description=(
                "Find companies by any mix of: category, investor, founder, whether they got a "
                "deal, and numeric conditions on ask_amount/deal_amount (dollars), "
                "ask_equity/deal_equity (percent), season, episode and investor_count; "
                "optionally sorted, and "
                "with the sum or average of a numeric column over all matches."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "category": {"type": "string"},
                    "investor": {"type": "string"},
                    "categories": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Companies in any of these categories.",
                    },
                    "investors": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Companies every one of these investors invested in.",
                    },
                    "founder": {"type": "string"},
                    "has_deal": {"type": "boolean"},
                    "filters": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "column": {"type": "string", "enum": sorted(FILTER_COLUMNS)},
                                "op": {"type": "string", "enum": list(COMPARISONS)},
                                "value": {"type": "number"},
                            },
                            "required": ["column", "op", "value"],
                            "additionalProperties": False,
                        },
                    },
                    "sort_by": {"type": "string", "enum": numeric},
                    "descending": {"type": "boolean"},
                    "aggregate": {
                        "type": "object",
                        "properties": {
                            "column": {"type": "string", "enum": numeric},
                            "op": {"type": "string", "enum": ["sum", "average"]},
                        },
                        "required": ["column", "op"],
                        "additionalProperties": False,
                    },
                    "limit": _LIMIT_SCHEMA,
                },
                "additionalProperties": False,
            },
            func=search_companies,
        ),
        Tool(
            name=DESCRIBE_DATASET,
            description=(
                "What the dataset holds: number of companies and of deals, its columns, "
                "companies per category, deals per investor, and the seasons."
            ),
            parameters={"type": "object", "properties": {}, "additionalProperties": False},
            func=describe,
        ),
    ]
