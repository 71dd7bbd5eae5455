from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentqueue.ai import ToolRegistry, default_tools
from agentqueue.ai.tools import DatasetError, load_dataset
from agentqueue.ai.tools.dataset import default_dataset_path


async def search(tools: ToolRegistry, tool: str, **args: Any) -> dict[str, Any]:
    result = await tools.call(tool, args)
    assert result.error is None, result.error
    assert result.output is not None
    data: dict[str, Any] = json.loads(result.output)
    return data


def investors_of(row: dict[str, str]) -> list[str]:
    return [name.strip() for name in row["investors"].split(";") if name.strip()]


def test_shipped_dataset_says_it_is_fictional() -> None:
    first_line = Path(default_dataset_path()).read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("#")
    assert "FICTIONAL" in first_line


async def test_deals_by_investor_are_exactly_the_rows_naming_them(
    tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    expected = [r["company"] for r in shipped_rows if "Mark Cuban" in investors_of(r)]
    assert len(expected) >= 3  # the seed's question needs a real answer

    data = await search(tools, "search_deals_by_investor", investor="Mark Cuban")

    assert data["total"] == len(expected)
    assert [r["company"] for r in data["results"]] == expected
    assert all("Mark Cuban" in r["investors"] for r in data["results"])


async def test_investor_search_ignores_case_and_accepts_a_last_name(tools: ToolRegistry) -> None:
    full = await search(tools, "search_deals_by_investor", investor="Mark Cuban")
    lower = await search(tools, "search_deals_by_investor", investor="mark cuban")
    last = await search(tools, "search_deals_by_investor", investor="Cuban")
    assert full == lower
    assert last["results"] == full["results"]


async def test_unknown_investor_has_no_deals(tools: ToolRegistry) -> None:
    data = await search(tools, "search_deals_by_investor", investor="Nobody McNoname")
    assert data == {"total": 0, "shown": 0, "results": []}


@pytest.mark.parametrize("query", ["Food", "food", "FOODS"])
async def test_category_search_returns_only_that_category(
    tools: ToolRegistry, shipped_rows: list[dict[str, str]], query: str
) -> None:
    expected = [r["company"] for r in shipped_rows if r["category"] == "Food"]
    data = await search(tools, "search_companies_by_category", category=query)
    assert [r["company"] for r in data["results"]] == expected
    assert {r["category"] for r in data["results"]} == {"Food"}


async def test_limit_caps_the_rows_but_reports_the_total(tools: ToolRegistry) -> None:
    data = await search(tools, "search_deals_by_investor", investor="Mark Cuban", limit=2)
    assert data["shown"] == 2
    assert len(data["results"]) == 2
    assert data["total"] > 2


async def test_get_company_by_full_or_partial_name(
    tools: ToolRegistry, shipped_rows: list[dict[str, str]]
) -> None:
    row = next(r for r in shipped_rows if r["company"] == "Brinewave Pickle Co.")
    full = await search(tools, "get_company", name="Brinewave Pickle Co.")
    partial = await search(tools, "get_company", name="brinewave")
    assert full == partial
    assert full["total"] == 1
    company = full["results"][0]
    assert company["founder"] == row["founder"]
    assert company["deal_amount"] == int(row["deal_amount"])
    assert company["investors"] == investors_of(row)


async def test_get_company_not_found(tools: ToolRegistry) -> None:
    data = await search(tools, "get_company", name="Zyxwvut Unlikely")
    assert data["total"] == 0


async def test_wrong_argument_types_are_reported(tools: ToolRegistry) -> None:
    result = await tools.call("search_companies_by_category", {"category": 7})
    assert result.error == "argument 'category' must be of type string"


async def test_a_custom_dataset_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "company,category,investors\n"
        "Acme Widgets,Hardware,Ada Example;Bo Sample\n"
        "Zed Labs,Software,Bo Sample\n",
        encoding="utf-8",
    )
    tools = default_tools(str(path))
    data = await search(tools, "search_deals_by_investor", investor="Bo Sample")
    assert [r["company"] for r in data["results"]] == ["Acme Widgets", "Zed Labs"]
    hardware = await search(tools, "search_companies_by_category", category="hardware")
    assert [r["company"] for r in hardware["results"]] == ["Acme Widgets"]


def test_dataset_without_required_columns_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,sector\nAcme,Hardware\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="company, category, investors"):
        load_dataset(path)


def test_missing_dataset_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
