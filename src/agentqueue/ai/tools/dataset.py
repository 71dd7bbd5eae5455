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

REQUIRED_COLUMNS = ("company", "category", "investors")
NUMERIC_COLUMNS = frozenset(
    {"ask_amount", "ask_equity", "deal_amount", "deal_equity", "season", "episode"}
)
DEFAULT_LIMIT = 10
MAX_LIMIT = 50

# Words people use for a category that do not reduce to its name by singularising.
CATEGORY_ALIASES = {"tech": "technology", "children": "kids"}

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


def category_key(text: str) -> str:
    words = re.sub(r"[^0-9a-z&]+", " ", text.casefold()).split()
    key = " ".join(singular(w) for w in words)
    alias = CATEGORY_ALIASES.get(key)
    return singular(alias) if alias else key


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
                seen.setdefault(category_key(row["category"]), row["category"])
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

    def companies_by_category(self, category: str) -> list[Row]:
        wanted = category_key(category)
        if not wanted:
            raise ToolError("category is empty")
        return [row for row in self.rows if category_key(row.get("category") or "") == wanted]

    def find_company(self, name: str) -> list[Row]:
        """Exact name match (ignoring case and punctuation), else names containing the query."""
        wanted = normalize_name(name)
        if not wanted:
            raise ToolError("company name is empty")
        exact = [row for row in self.rows if normalize_name(row["company"]) == wanted]
        if exact:
            return exact
        return [row for row in self.rows if wanted in normalize_name(row["company"])]


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
    """The three search tools, bound to one dataset."""

    def deals(args: dict[str, Any]) -> str:
        return listing(dataset.deals_by_investor(args["investor"]), _limit(args))

    def by_category(args: dict[str, Any]) -> str:
        return listing(dataset.companies_by_category(args["category"]), _limit(args))

    def company(args: dict[str, Any]) -> str:
        return listing(dataset.find_company(args["name"]), _limit(args))

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
    ]
