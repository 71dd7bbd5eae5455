"""`agentqueue usage`: finished jobs' tokens and cost from the records, grouped as asked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from agentqueue.cli.usage import grouped
from tests.cli.conftest import Run, one_line_error


def test_usage_counts_finished_jobs_by_type_and_day(cli: Run) -> None:
    assert cli("jobs", "submit", "noop", "--wait").code == 0
    found = cli("usage", "--by", "type", "--days", "1", "--json").json()
    by_type = {row["type"]: row for row in found["usage"]}
    assert by_type["noop"]["jobs"] >= 1
    assert set(by_type["noop"]) == {"type", "jobs", "inputTokens", "outputTokens", "costUsd"}
    assert found["totals"]["jobs"] == sum(row["jobs"] for row in found["usage"])
    today = datetime.now(UTC).date().isoformat()
    days = cli("usage", "--by", "day", "--since", today, "--json").json()["usage"]
    assert [row["day"] for row in days] == [today]
    table = cli("usage")
    assert table.code == 0 and "noop" in table.stdout and "total" in table.stdout


def test_usage_by_organization(cli: Run, mode: str) -> None:
    if mode == "remote":
        assert "direct mode" in one_line_error(cli("usage", "--by", "org"))
        return
    org = f"org-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        assert cli("jobs", "submit", "noop", "--user", "u1", "--org", org, "--wait").code == 0
    rows = cli("usage", "--by", "org,type", "--json").json()["usage"]
    assert {"org": org, "type": "noop", "jobs": 2, "inputTokens": 0, "outputTokens": 0,
            "costUsd": 0.0} in rows
    one = cli("usage", "--org", org, "--by", "type", "--json").json()
    assert one["usage"] == [{"type": "noop", "jobs": 2, "inputTokens": 0, "outputTokens": 0,
                             "costUsd": 0.0}]


def test_usage_checks_its_options(cli: Run) -> None:
    assert "--by" in one_line_error(cli("usage", "--by", "colour"))
    assert "YYYY-MM-DD" in one_line_error(cli("usage", "--since", "yesterday"))
    assert "not both" in one_line_error(cli("usage", "--since", "2026-01-01", "--days", "3"))


def test_grouping_sums_over_the_dimensions_left_out() -> None:
    rows: list[dict[str, Any]] = [
        {"day": "2026-01-01", "model": "gpt", "type": "chat", "jobs": 1, "inputTokens": 10,
         "outputTokens": 5, "costUsd": 0.25},
        {"day": "2026-01-02", "model": "gpt", "type": "summarize", "jobs": 2,
         "inputTokens": 20, "outputTokens": 1, "costUsd": 0.5},
        {"day": "2026-01-02", "model": None, "type": "chat", "jobs": 3, "inputTokens": 0,
         "outputTokens": 0, "costUsd": 0.0},
    ]
    assert grouped(rows, ["model"]) == [
        {"model": None, "jobs": 3, "inputTokens": 0, "outputTokens": 0, "costUsd": 0.0},
        {"model": "gpt", "jobs": 3, "inputTokens": 30, "outputTokens": 6, "costUsd": 0.75},
    ]
    assert [r["jobs"] for r in grouped(rows, ["day", "type"])] == [1, 3, 2]
