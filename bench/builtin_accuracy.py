"""Accuracy of the builtin agent on its question set (tests/ai/builtin/questions.json).

    python bench/builtin_accuracy.py [--show-failures] [--questions FILE] [--batch N]

Asks every question through the provider/tool loop a chat job runs (builtin provider, default
tools, shipped dataset) and prints the share answered correctly, overall and per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ai.builtin.questions import (  # noqa: E402
    Verdict,
    ask,
    company_names,
    judge,
    load_questions,
)

from agentqueue.ai import build_provider, default_tools  # noqa: E402


async def run(path: Path | None, batch: int | None) -> list[Verdict]:
    provider, tools, companies = build_provider("builtin"), default_tools(None), company_names()
    verdicts = []
    items = load_questions(path) if path else load_questions()
    for item in items:
        if batch is not None and item.get("batch", 1) != batch:
            continue
        verdicts.append(judge(item, await ask(item, provider, tools), companies))
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--questions", type=Path, help="another question file of the same form")
    parser.add_argument("--batch", type=int, help="only the questions of this batch")
    args = parser.parse_args()
    verdicts = asyncio.run(run(args.questions, args.batch))
    asked, right = Counter[str](), Counter[str]()
    for verdict in verdicts:
        asked[verdict.item["kind"]] += 1
        right[verdict.item["kind"]] += verdict.passed
    for kind in sorted(asked):
        print(f"{kind:18} {right[kind]:4}/{asked[kind]:<4} {right[kind] / asked[kind]:7.1%}")
    total, correct = len(verdicts), sum(v.passed for v in verdicts)
    print(f"{'all':18} {correct:4}/{total:<4} {correct / total:7.1%}")
    if args.show_failures:
        for verdict in verdicts:
            if not verdict.passed:
                print(f"\n{verdict.item['question']!r}: {verdict.problems}")
                print("  " + verdict.reply.response.replace("\n", "\n  "))


if __name__ == "__main__":
    main()
