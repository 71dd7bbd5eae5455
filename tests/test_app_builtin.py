"""The public API over the one registry: an App enqueues the built-in types as its own, checked
with the same run-time facts as the HTTP APIs, and a user's handler gets the job's metered AI
providers, owner and usage from its context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.ai.types import ChatMessage
from agentqueue.config import Settings
from agentqueue.engine.connection import connect
from agentqueue.services import WorkerGroup, build_workers
from tests.conftest import delete_prefix
from tests.support.fake_openai import FakeOpenAI, last_user_content, text_completion
from tests.support.waiting import eventually


class Question(BaseModel):
    question: str


def make_app(settings: Settings) -> agentqueue.App:
    app = agentqueue.App(settings=settings)

    @app.job("ask", attempts=1)
    async def ask(ctx: agentqueue.Context, data: Question) -> dict[str, Any]:
        provider = ctx.ai.provider("openai")
        stream = ctx.text_stream(percent=40)
        reply = await provider.chat([ChatMessage(role="user", content=data.question)], [],
                                    on_text=stream)
        await stream.close()
        owner = await ctx.owner()
        usage = await ctx.usage()
        return {"answer": reply.content, "owner": owner.user_id if owner else None,
                "tokens": [usage.input_tokens, usage.output_tokens], "calls": usage.calls}

    return app


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    def answer(request: dict[str, Any]) -> Any:
        return text_completion(f"answer to {last_user_content(request)}",
                               prompt_tokens=12, completion_tokens=7)

    with FakeOpenAI(answer).running() as server:
        yield server


@pytest.fixture
async def app(
    redis_url: str, prefix: str, tmp_path: Path, fake: FakeOpenAI
) -> AsyncIterator[agentqueue.App]:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=str(tmp_path / "data"),
        AI_PROVIDER="builtin", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url,
        OPENAI_MODEL="fake-model", MAX_MESSAGE_CHARS="20",
    )
    app = make_app(settings)
    yield app
    await app.close()
    conn = connect(redis_url)
    await delete_prefix(conn, prefix)
    await conn.aclose()


@pytest.fixture
async def workers(app: agentqueue.App, redis_url: str) -> AsyncIterator[WorkerGroup]:
    """Every type the App knows, built-in ones included, served as `agentqueue worker` does."""
    backend = await app._backend()
    group = build_workers(app.settings, redis_url, records=backend.records,
                          registry=app.types())
    await group.start()
    yield group
    await group.stop(5)


async def test_an_app_enqueues_a_built_in_type_and_a_worker_runs_it(
    app: agentqueue.App, workers: WorkerGroup
) -> None:
    text = ("The council approved a budget on Monday. It adds forty buses. "
            "Night service grows on six routes.")
    job = await app.enqueue("summarize", {"text": text, "maxSentences": 1}, owner="u1")
    assert job.queue == "ai-jobs"
    result = await job.wait(timeout=60)
    assert result["provider"] == "builtin" and result["summary"]
    backend = await app._backend()
    record = await backend.records.get(job.queue, job.id)
    assert record is not None and record.type == "summarize" and record.user_id == "u1"


async def test_built_in_input_is_checked_at_enqueue_with_the_operators_limits(
    app: agentqueue.App,
) -> None:
    with pytest.raises(agentqueue.InvalidJobInput, match="data.message: is required"):
        await app.enqueue("chat", {})
    # MAX_MESSAGE_CHARS and the known agents: the run-time facts /api/jobs checks too.
    with pytest.raises(agentqueue.InvalidJobInput, match="MAX_MESSAGE_CHARS"):
        await app.enqueue("chat", {"message": "x" * 21})
    with pytest.raises(agentqueue.InvalidJobInput, match="unknown agent 'nobody'"):
        await app.enqueue("agent-task", {"agent_id": "nobody", "title": "x"})
    backend = await app._backend()
    assert sum((await backend.queue("agent-queue").counts()).values()) == 0


async def test_a_users_handler_streams_from_a_metered_provider_and_its_usage_is_recorded(
    app: agentqueue.App, workers: WorkerGroup, fake: FakeOpenAI
) -> None:
    job = await app.enqueue("ask", {"question": "why?"}, owner="u7")
    result = await job.wait(timeout=60)
    assert result == {"answer": "answer to why?", "owner": "u7", "tokens": [12, 7], "calls": 1}
    assert len(fake.requests) == 1 and fake.requests[0].body["stream"] is True
    # The answer streamed into the job's progress as it arrived.
    assert await job.progress() == {"percent": 40, "text": "answer to why?", "streaming": True}
    backend = await app._backend()

    async def recorded() -> Any:
        record = await backend.records.get(job.queue, job.id)
        return record if record is not None and record.status == "completed" else None

    record = await eventually(recorded, what="the record completed")
    assert (record.input_tokens, record.output_tokens) == (12, 7)


async def test_without_builtin_an_app_knows_only_its_own_types(tmp_path: Path) -> None:
    app = agentqueue.App(settings=Settings(AGENTQUEUE_DATA_DIR=str(tmp_path)), builtin=False)
    with pytest.raises(agentqueue.UnknownJobType, match="unknown job type 'summarize'"):
        await app.enqueue("summarize", {"text": "x"})
