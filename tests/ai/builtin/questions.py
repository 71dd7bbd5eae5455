"""The builtin agent's question set (questions.json) and how an answer is judged.

Shared by ``test_questions.py`` (every question must pass) and ``bench/builtin_accuracy.py``
(prints the accuracy). A question is asked through ``run_agent``, the provider/tool loop a chat
job runs, with the default tools over the shipped dataset.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentqueue.ai import AgentReply, ChatMessage, ToolRegistry, run_agent
from agentqueue.ai.providers.base import Provider
from agentqueue.ai.providers.builtin_math import ARITHMETIC_EXAMPLES
from agentqueue.ai.tools.dataset import default_dataset_path

QUESTIONS_FILE = Path(__file__).with_name("questions.json")
# What an honest "I can't" says (the refusals of builtin_answers and builtin_routing).
REFUSALS = ("can only answer", "cannot", "could not", "does not record")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)
_LIST_NUMBER = re.compile(r"^\d+\. ", re.MULTILINE)


def load_questions(path: Path = QUESTIONS_FILE) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    questions: list[dict[str, Any]] = data["questions"] if isinstance(data, dict) else data
    return questions


def company_names() -> list[str]:
    """The shipped dataset's companies, read with nothing but the csv module."""
    with Path(default_dataset_path()).open(newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [row["company"] for row in csv.DictReader(lines)]


async def ask(item: dict[str, Any], provider: Provider, tools: ToolRegistry) -> AgentReply:
    history = [ChatMessage(**message) for message in item.get("history", [])]
    return await run_agent(item["question"], history, provider, tools)


def _numbers(text: str) -> set[float]:
    found = set()
    for match in _NUMBER.finditer(text):
        try:
            found.add(float(match.group(0).replace(",", "").rstrip(".")))
        except ValueError:
            continue
    return found


@dataclass
class Verdict:
    item: dict[str, Any]
    reply: AgentReply
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def judge(item: dict[str, Any], reply: AgentReply, companies: list[str]) -> Verdict:
    """Everything wrong with ``reply`` as the answer to ``item`` (nothing: it passed)."""
    problems: list[str] = []
    answer = reply.response
    called = [step.name for step in reply.steps]
    tools = item["tool"] if isinstance(item["tool"], list) else [item["tool"]]  # any of them
    if item["tool"] is None:
        if called:
            problems.append(f"expected no tool call, got {called}")
    elif not called or called[0] not in tools:
        problems.append(f"expected a call of {' or '.join(tools)} first, got {called}")
    elif item.get("arguments"):
        arguments = reply.steps[0].arguments
        for key, value in item["arguments"].items():
            if arguments.get(key) != value:
                problems.append(f"expected {key}={value!r}, got {arguments.get(key)!r}")
    for text in item.get("contains", []):
        if text not in answer:
            problems.append(f"answer lacks {text!r}")
    if "companies" in item:
        named = sorted(name for name in companies if name in answer)
        if named != sorted(item["companies"]):
            problems.append(f"answer names {named}, expected {sorted(item['companies'])}")
    if item.get("refusal") and not any(marker in answer for marker in REFUSALS):
        problems.append("expected an honest 'I can't'")
    # Every figure in the answer is the user's own, or came from a tool (its arguments are the
    # user's figures as the agent read them; its results are what it computed or found).
    allowed = _numbers(item["question"]) | _numbers(ARITHMETIC_EXAMPLES)
    for message in item.get("history", []):
        allowed |= _numbers(message["content"])
    for step in reply.steps:
        allowed |= _numbers(json.dumps(step.arguments)) | _numbers(step.output or "")
        allowed |= _numbers(step.error or "")  # "exponent 387420489 is too large"
    invented = sorted(_numbers(_LIST_NUMBER.sub("", answer)) - allowed)
    if invented:
        problems.append(f"answer has figures no tool produced: {invented}")
    return Verdict(item, reply, problems)
