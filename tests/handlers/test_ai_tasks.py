"""AI task jobs run by real workers on a real Redis: the builtin provider offline, and the
OpenAI provider against a local server speaking its wire protocol."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from agentqueue.ai.pricing import PriceTable
from agentqueue.ai.types import Usage
from agentqueue.config import Settings
from agentqueue.engine.jobs import JobView
from agentqueue.engine.queue import JobQueue, QueueDefaults
from agentqueue.services import WorkerGroup, build_workers
from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.waiting import eventually

QUEUES = ("ai-jobs", "ai-tasks", "agent-tasks", "agent-queue")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.fixture
async def start(
    redis_url: str, prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    groups: list[WorkerGroup] = []

    async def start_workers(**env: str) -> WorkerGroup:
        settings = Settings(  # type: ignore[call-arg]
            REDIS_URL=redis_url, QUEUE_PREFIX=prefix, QUEUE_BACKOFF_MS="50",
            QUEUE_LOCK_DURATION_MS="2000", **env,
        )
        group = build_workers(settings, redis_url, list(QUEUES))
        await group.start()
        groups.append(group)
        return group

    yield start_workers
    for group in groups:
        await group.stop(0)


@pytest.fixture
def queues(client: redis.Redis, prefix: str) -> dict[str, JobQueue]:
    return {
        name: JobQueue(name, client, prefix=prefix, defaults=QueueDefaults(backoff_ms=50))
        for name in QUEUES
    }


def openai_env(fake: FakeOpenAI, model: str = "gpt-4o-mini") -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url, "OPENAI_MODEL": model}


async def run(queue: JobQueue, name: str, data: dict[str, Any]) -> JobView:
    job_id = await queue.add(name, data)

    async def done() -> JobView | None:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(done, what=f"{name} job {job_id} to finish")


# -- builtin, offline -------------------------------------------------------------------------

ARTICLE = (
    "The city council approved a new budget for public transport on Monday. "
    "The budget adds forty electric buses and extends night service on six routes. "
    "Council members said the plan would cut commuting times across the city. "
    "A local bakery also celebrated its tenth anniversary with free pastries. "
    "Transport officials expect the first electric buses to run by next spring. "
    "The weather on Monday was mild."
)


async def test_builtin_summarize_sentiment_classify_extract(start, queues) -> None:
    await start()
    jobs = queues["ai-jobs"]
    summary = await run(jobs, "summarize", {"text": ARTICLE, "maxSentences": 2})
    assert summary.state == "completed"
    result = summary.result
    assert result["provider"] == "builtin" and result["tokenUsed"] == 0
    assert result["costCents"] == 0 and result["originalLength"] == len(ARTICLE)
    assert "budget" in result["summary"] and "pastries" not in result["summary"]
    assert result["summaryLength"] == len(result["summary"]) < len(ARTICLE)

    happy = await run(jobs, "sentiment", {"text": "I love this product, it is wonderful!"})
    assert happy.result["sentiment"] == "positive" and happy.result["score"] > 0.5
    sad = await run(jobs, "sentiment", {"text": "This is terrible, I hate it and want a refund."})
    assert sad.result["sentiment"] == "negative" and sad.result["score"] < -0.5

    label = await run(jobs, "classify", {
        "text": "The striker scored twice in the cup final.",
        "labels": ["sports", "politics", "cooking"],
    })
    assert label.result["label"] == "sports"
    assert sum(label.result["scores"].values()) == pytest.approx(1.0)

    found = await run(jobs, "extract", {
        "text": "Invoice from Acme Corp to jane.doe@example.com, total $1,250.00.",
        "schema": {"type": "object", "properties": {
            "email": {"type": "string", "format": "email"}, "total": {"type": "number"},
        }},
    })
    assert found.result["data"] == {"email": "jane.doe@example.com", "total": 1250.0}


async def test_builtin_cannot_translate_and_says_what_enables_it(start, queues) -> None:
    await start()
    view = await run(queues["ai-jobs"], "translate", {"text": "Hello", "targetLanguage": "fr"})
    assert view.state == "failed" and view.attempts_made == 1  # not retried
    assert "OPENAI_API_KEY" in (view.failed_reason or "")


async def test_invalid_input_fails_at_once_naming_the_field(start, queues) -> None:
    await start()
    view = await run(queues["ai-jobs"], "translate", {"text": "Hello"})
    assert view.state == "failed" and view.attempts_made == 1
    assert "targetLanguage" in (view.failed_reason or "")
    bad_schema = await run(queues["ai-jobs"], "extract", {"text": "x", "schema": {"type": 5}})
    assert bad_schema.attempts_made == 1 and "schema" in (bad_schema.failed_reason or "")


@pytest.mark.parametrize("queue,name,data,reason", [
    ("agent-queue", "chat", {}, "invalid job data: data.message: is required"),
    ("agent-queue", "chat", {"message": 5}, "invalid job data: data.message: Input should be"),
    ("agent-queue", "batch", {"messages": []},
     "invalid job data: data.messages: List should have"),
    ("agent-tasks", "agent-task", {"agent_id": "nobody", "title": "x"},
     "invalid job data: data: unknown agent 'nobody'; known: default"),
])
async def test_a_job_added_straight_to_redis_is_checked_by_the_same_input_model(
    start, queues, queue: str, name: str, data: dict[str, Any], reason: str
) -> None:
    """The models /api/jobs checks at enqueue fail a job a plain BullMQ producer added at once."""
    await start()
    view = await run(queues[queue], name, data)
    assert view.state == "failed" and view.attempts_made == 1
    assert (view.failed_reason or "").startswith(reason), view.failed_reason


async def test_builtin_embeddings_are_real_vectors(start, queues) -> None:
    await start()
    view = await run(queues["ai-tasks"], "generate-embeddings",
                     {"texts": ["a cat sat on the mat", "a kitten on a rug"]})
    assert view.state == "completed", view.failed_reason
    assert view.result["dimensions"] == 384 and view.result["count"] == 2
    assert view.result["model"] == "all-MiniLM-L6-v2"


async def test_asking_for_a_provider_that_is_not_configured_fails_at_once(
    start, queues
) -> None:
    await start()
    view = await run(queues["ai-jobs"], "sentiment", {"text": "fine", "provider": "anthropic"})
    assert view.state == "failed" and view.attempts_made == 1
    assert "ANTHROPIC_API_KEY" in (view.failed_reason or "")


# -- with a language model --------------------------------------------------------------------


async def test_completion_streams_into_progress_and_extends_the_conversation(
    start, queues, fake
) -> None:
    await start(**openai_env(fake))
    fake.reply = lambda _: text_completion("Paris is the capital of France.",
                                           prompt_tokens=20, completion_tokens=7)
    fake.pause = threading.Event()
    fake.pause_after = 1  # hold the stream after its first text piece
    tasks = queues["ai-tasks"]
    job_id = await tasks.add("generate-completion", {
        "conversationId": "conv-1", "message": "What is the capital of France?",
    })

    async def partial_text() -> str | None:
        view = await tasks.get(job_id)
        progress = view.progress if view else None
        return progress.get("text") if isinstance(progress, dict) else None

    text = await eventually(partial_text, what="streamed text in the job's progress")
    assert "Paris is the capital of France.".startswith(text) and text != ""
    fake.pause.set()
    view = await run_existing(tasks, job_id)
    assert view.result["content"] == "Paris is the capital of France."
    assert view.result["conversationId"] == "conv-1" and view.result["tokens"] == 27
    assert fake.pause_outcomes == [True]

    fake.pause = None
    fake.reply = lambda request: text_completion(f"saw {len(request['messages'])} messages")
    follow = await run(tasks, "generate-completion",
                       {"conversationId": "conv-1", "message": "And of Spain?"})
    assert follow.result["content"] == "saw 3 messages"  # both earlier turns were kept


async def run_existing(queue: JobQueue, job_id: str) -> JobView:
    async def done() -> JobView | None:
        view = await queue.get(job_id)
        return view if view and view.state in ("completed", "failed") else None

    return await eventually(done, what=f"job {job_id} to finish")


async def test_usage_and_cost_are_summed_across_a_retry_without_double_counting(
    start, queues, fake
) -> None:
    await start(**openai_env(fake))
    fake.script(
        completion(tool_calls=[function_call("c1", "calculator", {"expression": "6*7"})],
                   prompt_tokens=10, completion_tokens=5, model="gpt-4o-mini"),
        (500, {"error": {"message": "upstream hiccup"}}),
        (500, {"error": {"message": "upstream hiccup"}}),
        (500, {"error": {"message": "upstream hiccup"}}),  # the SDK retries twice itself
        text_completion("6*7 is 42", prompt_tokens=30, completion_tokens=6, model="gpt-4o-mini"),
    )
    view = await run(queues["agent-queue"], "chat", {"message": "what is 6*7?", "sessionId": "u"})
    assert view.state == "completed" and view.attempts_made == 2, view.failed_reason
    assert view.result["response"] == "6*7 is 42"
    # The tool-call reply of attempt 1 was reused by attempt 2, not bought (or counted) again.
    assert fake.count() == 5
    usage = view.result["usage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["calls"]) == (40, 11, 2)
    expected = PriceTable.load().cost("gpt-4o-mini", Usage(input_tokens=40, output_tokens=11))
    assert usage["costUsd"] == pytest.approx(expected.usd)
    assert view.result["costCents"] == pytest.approx(expected.usd * 100)
    assert view.result["tokenUsed"] == 51


async def test_a_retry_asks_again_after_an_answer_that_did_not_fit_the_schema(
    start, queues, fake
) -> None:
    await start(**openai_env(fake))
    fake.script(
        completion('{"label": "weather"}', prompt_tokens=20, completion_tokens=4,
                   model="gpt-4o-mini"),  # not one of the labels: rejected
        completion('{"label": "sports", "scores": {"sports": 0.9, "politics": 0.1}}',
                   prompt_tokens=20, completion_tokens=12, model="gpt-4o-mini"),
    )
    view = await run(queues["ai-jobs"], "classify", {
        "text": "The striker scored twice.", "labels": ["sports", "politics"]})
    assert view.state == "completed" and view.attempts_made == 2, view.failed_reason
    assert view.result["label"] == "sports"
    assert fake.count() == 2  # the rejected answer was not replayed to the retry
    # Both calls were paid for, so both count.
    usage = view.result["usage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["calls"]) == (40, 16, 2)


async def test_a_retry_asks_again_after_an_empty_answer(start, queues, fake) -> None:
    await start(**openai_env(fake))
    fake.script(text_completion(""), text_completion("Forty electric buses were approved."))
    view = await run(queues["ai-jobs"], "summarize", {"text": ARTICLE})
    assert view.state == "completed" and view.attempts_made == 2, view.failed_reason
    assert view.result["summary"] == "Forty electric buses were approved."
    assert fake.count() == 2 and view.result["usage"]["calls"] == 2


async def test_an_unpriced_model_costs_zero_and_says_so(start, queues, fake) -> None:
    await start(**openai_env(fake, model="house-model-7"))
    fake.reply = lambda _: completion('{"sentiment": "positive", "score": 0.8}',
                                      prompt_tokens=9, completion_tokens=4, model="house-model-7")
    view = await run(queues["ai-jobs"], "sentiment", {"text": "Great!"})
    assert view.result["sentiment"] == "positive" and view.result["tokenUsed"] == 13
    assert view.result["costCents"] == 0
    assert "house-model-7" in view.result["usage"]["costNote"]
    request = fake.requests[-1].body
    assert request["response_format"]["type"] == "json_schema"


async def test_an_agent_never_runs_a_tool_it_is_not_allowed(
    start, queues, fake, tmp_path: Path
) -> None:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{
        "id": "math-only", "name": "Calculator agent", "systemPrompt": "Only do arithmetic.",
        "tools": ["calculator"],
    }]))
    await start(**openai_env(fake), AGENTQUEUE_AGENTS_FILE=str(agents))
    fake.script(
        completion(tool_calls=[function_call(
            "c1", "search_deals_by_investor", {"investor": "Mark Cuban"})]),
        text_completion("I can only do arithmetic."),
    )
    tasks = queues["agent-tasks"]
    view = await run(tasks, "agent-task", {"agent_id": "math-only", "title": "Find deals"})
    assert view.state == "completed", view.failed_reason
    step = view.result["toolCalls"][0]
    assert step["name"] == "search_deals_by_investor" and step["output"] is None
    assert "not available to this agent" in step["error"]
    first_request = fake.requests[0].body
    assert [t["function"]["name"] for t in first_request["tools"]] == ["calculator"]
    assert first_request["messages"][0] == {"role": "system", "content": "Only do arithmetic."}
    logs = await tasks.client.lrange(f"{tasks.prefix}:agent-tasks:{view.id}:logs", 0, -1)
    assert any("refused tool 'search_deals_by_investor'" in line for line in logs)
    unknown = await run(tasks, "agent-task", {"agent_id": "nobody", "title": "x"})
    assert unknown.state == "failed" and "unknown agent" in (unknown.failed_reason or "")
