"""One registry of job types: the built-in types are defined with the same decorator as a
user's, listed beside them, served from settings-named queues, and left out on request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentqueue
from agentqueue.config import Settings
from agentqueue.definition import JobDefinition
from agentqueue.services import build_workers, queue_names
from agentqueue.serving import serve, served

BUILTIN = ["chat", "batch", "summarize", "classify", "sentiment", "translate", "extract",
           "generate-completion", "generate-embeddings", "agent-task", "webhook",
           "slack-message", "discord-message", "send-welcome", "send-verification",
           "send-reset-password", "send-notification", "document-processing",
           "fine-tuning", "model-training", "data-conversion", "workflow-execution",
           "bulk-operation"]


class Convert(BaseModel):
    source: str


@pytest.fixture(autouse=True)
def builtin_served_again() -> Iterator[None]:
    yield
    serve(None)  # what this process serves is global: leave the default behind


def user_app(tmp_path: Path, **env: str) -> agentqueue.App:
    app = agentqueue.App(settings=Settings(AGENTQUEUE_DATA_DIR=str(tmp_path), **env))

    @app.job("report-export", queue="conversions", attempts=2)
    async def convert(ctx: agentqueue.Context, data: Convert) -> dict[str, Any]:
        return {"converted": data.source}

    return app


def test_built_in_and_user_types_are_listed_in_one_registry(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    types = app.types()
    assert types.names() == [*BUILTIN, "report-export"]
    # Every one a JobDefinition made by the same decorator: a handler, an input model, a queue.
    assert all(isinstance(t, JobDefinition) and t.handler.__name__ for t in types)
    assert types.get("summarize").input.__name__ == "SummarizeInput"  # type: ignore[union-attr]
    app.install()
    assert served().names() == types.names()


def test_built_in_queues_are_read_from_the_settings(tmp_path: Path) -> None:
    app = user_app(tmp_path, AGENT_QUEUE_NAME="chats", AI_JOBS_QUEUE_NAME="ai")
    types = app.types()
    queues = {t.name: t.queue_name(app.settings) for t in types}
    assert queues["chat"] == queues["batch"] == "chats"
    assert queues["summarize"] == "ai" and queues["report-export"] == "conversions"


def test_without_builtin_only_the_users_types_are_served(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    app.install(builtin=False)
    assert served().names() == ["report-export"]
    assert "conversions" in queue_names(app.settings)


async def test_one_worker_per_queue_running_every_type_of_it(tmp_path: Path) -> None:
    app = user_app(tmp_path, AGENT_QUEUE_NAME="chats")
    url = "redis://127.0.0.1:1/0"  # never connected: the workers are built, not started
    group = build_workers(app.settings, url, registry=app.types())
    try:
        handlers = {w.queue: sorted(w.handlers) for w in group.workers}
        assert handlers == {
            "chats": ["batch", "chat"],
            "ai-jobs": ["classify", "extract", "sentiment", "summarize", "translate"],
            "ai-tasks": ["generate-completion", "generate-embeddings"],
            "agent-tasks": ["agent-task"],
            "webhooks": ["discord-message", "slack-message", "webhook"],
            "email": ["send-notification", "send-reset-password", "send-verification",
                      "send-welcome"],
            "jobs": ["bulk-operation", "data-conversion", "document-processing", "fine-tuning",
                     "model-training", "workflow-execution"],
            "conversions": ["report-export"],
        }
    finally:
        await group.stop(0)
    only_users = build_workers(app.settings, url, registry=app.types(builtin=False))
    try:
        assert [(w.queue, sorted(w.handlers)) for w in only_users.workers] == [
            ("conversions", ["report-export"])]
        with pytest.raises(ValueError, match="unknown queue"):
            build_workers(app.settings, url, ["chats"], registry=app.types(builtin=False))
    finally:
        await only_users.stop(0)


def test_a_queue_named_by_a_function_of_the_settings(tmp_path: Path) -> None:
    app = agentqueue.App(settings=Settings(AGENTQUEUE_DATA_DIR=str(tmp_path),
                                           AI_TASKS_QUEUE_NAME="tasks-q"))

    @app.job("beside-ai-tasks", queue=lambda s: s.ai_tasks_queue_name)
    async def beside(ctx: agentqueue.Context, data: Convert) -> None: ...

    assert app.queues == ["tasks-q"]


def test_the_openapi_schema_documents_every_served_types_input_model(tmp_path: Path) -> None:
    from agentqueue.api.app import create_app

    app = user_app(tmp_path)
    app.install()
    schema = create_app(app.settings, run_worker=False).openapi()
    components = schema["components"]["schemas"]
    assert components["JobData.Convert"]["properties"]["source"]["type"] == "string"
    assert components["JobData.ChatInput"]["required"] == ["message"]
    variant = components["CreateJob.report-export"]["allOf"][1]
    assert variant["properties"]["data"] == {"$ref": "#/components/schemas/JobData.Convert"}
    body = schema["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["discriminator"]["mapping"]["report-export"] == (
        "#/components/schemas/CreateJob.report-export")
    assert len(body["schema"]["oneOf"]) == len(BUILTIN) + 1
