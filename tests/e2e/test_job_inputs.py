"""What `/api/jobs` (seed 001) accepts, over one real `agentqueue serve`: each job type's data is
checked at enqueue against the model its worker uses, a job type's queue decides its attempts,
backoff and retention, `delay` is honoured, and an unknown field is refused, not dropped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentqueue.config import Settings
from agentqueue.core.queue_profiles import queue_defaults
from agentqueue.engine.connection import connect
from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env

# One valid `data` per job type the catalog lists.
VALID: dict[str, dict[str, Any]] = {
    "chat": {"message": "hello"},
    "batch": {"messages": [{"message": "hello"}, "and you?"]},
    "summarize": {"text": "A short text. It has two sentences."},
    "classify": {"text": "I love it", "labels": ["good", "bad"]},
    "sentiment": {"text": "I love it"},
    "translate": {"text": "hello", "targetLanguage": "fr"},
    "extract": {"text": "Ada, 36", "schema": {"type": "object",
                                               "properties": {"name": {"type": "string"}}}},
    "generate-completion": {"message": "hello"},
    "generate-embeddings": {"text": "hello"},
    "agent-task": {"agent_id": "default", "title": "Add 2 and 2"},
    "webhook": {"url": "https://example.com/hook", "payload": {"a": 1}},
    "document-processing": {"documentId": "notes", "content": "Some notes."},
}


@pytest.fixture(scope="module")
async def service(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> AsyncIterator[dict[str, Any]]:
    # The machine's (or the test session's) Redis, so the test can read what was queued.
    env = serve_env(tmp_path_factory.mktemp("data"), REDIS_URL=redis_url,
                    MAX_MESSAGE_CHARS="50", MAX_BATCH_MESSAGES="2")
    key = create_key(env, "--user", "alice", "--org", "acme")
    with agentqueue("serve", env, tmp_path_factory.mktemp("logs") / "serve.log") as proc:
        await proc.wait_healthy()
        yield {"proc": proc, "key": key, "env": env}
    await delete_service_keys(env)


def client(service: dict[str, Any]) -> httpx.AsyncClient:
    proc: AgentqueueProcess = service["proc"]
    return httpx.AsyncClient(base_url=proc.base_url, timeout=30,
                             headers={"Authorization": f"Bearer {service['key']}"})


async def job_count(http: httpx.AsyncClient) -> int:
    listed = await http.get("/api/jobs")
    assert listed.status_code == 200, listed.text
    return int(listed.json()["total"])


async def queued_options(service: dict[str, Any], job_ref: str) -> dict[str, Any]:
    """The BullMQ options the job was added with, read from Redis."""
    queue, job_id = job_ref.split(":", 1)
    conn = connect(service["env"]["REDIS_URL"])
    try:
        raw = await conn.hget(f"{service['env']['QUEUE_PREFIX']}:{queue}:{job_id}", "opts")
    finally:
        await conn.aclose()
    assert raw is not None, f"job {job_ref} is not in Redis"
    return dict(json.loads(raw))


@pytest.mark.parametrize("job_type,data,problem", [
    ("chat", {}, "data.message: is required"),
    ("chat", {"message": 5}, "data.message: Input should be a valid string"),
    ("batch", {"messages": []}, "data.messages: List should have at least 1 item"),
    ("agent-task", {"agent_id": "nobody", "title": "hi"},
     "data: unknown agent 'nobody'; known: default"),
    ("agent-task", {"agent_id": "default"},
     "data: an agent task needs a `title`, `description` or `prompt`"),
    # The operator's limits, as /agent/queue/chat and /agent/queue/batch apply them.
    ("chat", {"message": "x" * 51}, "data.message: must be at most 50 characters"),
    ("chat", {"message": "hi", "conversationHistory": [{"role": "user", "content": "x" * 51}]},
     "data.conversationHistory[0].content: must be at most 50 characters"),
    ("batch", {"messages": ["a", "b", "c"]}, "data.messages: at most 2 per batch"),
    ("batch", {"messages": ["x" * 51]}, "data.messages[0].message: must be at most 50"),
    ("extract", {"text": "Ada", "schema": {"type": "bogus"}},
     "data.schema: is not a valid JSON Schema: "),
    ("extract", {"text": "Ada", "schema": {"type": "string"}},
     "data.schema: must describe an object with `properties`"),
])
async def test_data_the_worker_would_refuse_is_refused_at_enqueue(
    service, job_type: str, data: dict[str, Any], problem: str
) -> None:
    """Before: 201, and the job failed in the worker later."""
    async with client(service) as http:
        before = await job_count(http)
        answer = await http.post("/api/jobs", json={"type": job_type, "data": data})
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"].startswith(problem), answer.json()
        assert await job_count(http) == before


async def test_every_job_type_gets_its_queues_attempts_backoff_and_retention(service) -> None:
    """Before: a webhook got 3 attempts (a generic default) instead of its queue's 5."""
    settings = Settings()
    async with client(service) as http:
        for job_type, data in VALID.items():
            # A long delay: the job waits in Redis with its options while they are read.
            created = await http.post("/api/jobs", json={"type": job_type, "data": data,
                                                         "delay": 3_600_000})
            assert created.status_code == 201, f"{job_type}: {created.text}"
            job = created.json()
            queue = job["id"].split(":", 1)[0]
            profile = queue_defaults(settings, queue).job_options()
            assert job["maxAttempts"] == profile["attempts"], job_type
            opts = await queued_options(service, job["id"])
            for option in ("attempts", "backoff", "removeOnComplete", "removeOnFail"):
                assert opts[option] == profile[option], f"{job_type}: {option}"
        webhook = await http.post("/api/jobs", json={"type": "webhook", "data": VALID["webhook"],
                                                     "delay": 3_600_000})
        assert webhook.json()["maxAttempts"] == 5
        chosen = await http.post("/api/jobs", json={"type": "webhook", "data": VALID["webhook"],
                                                    "delay": 3_600_000, "maxAttempts": 2})
        assert chosen.json()["maxAttempts"] == 2
        assert (await queued_options(service, chosen.json()["id"]))["attempts"] == 2


async def test_a_delayed_job_waits_as_delayed(service) -> None:
    """Before: `delay` was dropped without a word and the job ran at once."""
    async with client(service) as http:
        created = await http.post("/api/jobs", json={"type": "chat", "data": VALID["chat"],
                                                     "delay": 3_600_000})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"].split(":", 1)[1]
        seen = await http.get(f"/agent/queue/job/{job_id}")
        assert seen.json()["job"]["status"] == "delayed"
        assert (await queued_options(service, created.json()["id"]))["delay"] == 3_600_000


async def test_a_chat_gets_its_session_at_enqueue_so_retries_continue_it(service) -> None:
    """Before: through /api/jobs each attempt of a chat started a session of its own."""
    async with client(service) as http:
        created = await http.post("/api/jobs", json={"type": "chat", "data": VALID["chat"],
                                                     "delay": 3_600_000})
        session = created.json()["data"]["sessionId"]
        assert session
        job_id = created.json()["id"].split(":", 1)[1]
        queued = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
        assert queued["data"]["sessionId"] == session
        chosen = await http.post("/api/jobs", json={"type": "chat", "data": {
            "message": "hi", "sessionId": "mine"}, "delay": 3_600_000})
        assert chosen.json()["data"]["sessionId"] == "mine"


@pytest.mark.parametrize("delay,problem", [
    (-1, "delay: Input should be greater than or equal to 0"),
    (366 * 24 * 3600 * 1000 + 1, "delay: Input should be less than or equal to"),
    ("1000", "delay: Input should be a valid integer"),
])
async def test_a_delay_out_of_bounds_is_400(service, delay: Any, problem: str) -> None:
    async with client(service) as http:
        answer = await http.post("/api/jobs", json={"type": "chat", "data": VALID["chat"],
                                                    "delay": delay})
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"].startswith(problem)


@pytest.mark.parametrize("path,body", [
    ("/api/jobs", {"type": "chat", "data": {"message": "hi"}, "delayMs": 1000}),
    ("/agent/queue/chat", {"message": "hi", "delayMs": 1000}),
    ("/agent/queue/batch", {"messages": [{"message": "hi"}], "delayMs": 1000}),
    ("/v1/jobs/summarize", {"text": "Hi there.", "delayMs": 1000}),
    ("/ai/queue", {"message": "hi", "delayMs": 1000}),
])
async def test_an_unknown_top_level_field_is_refused_by_name(
    service, path: str, body: dict[str, Any]
) -> None:
    """Before: dropped without a word (a misspelt option did nothing)."""
    async with client(service) as http:
        before = await job_count(http)
        answer = await http.post(path, json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"] == "delayMs: unknown field (not accepted here)"
        assert await job_count(http) == before


async def test_the_schema_says_request_bodies_take_no_other_fields(service) -> None:
    async with client(service) as http:
        schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("CreateJob", "ChatRequest", "BatchRequest", "BatchItem", "SummarizeInput",
                 "ClassifyInput", "SentimentInput", "TranslateInput", "ExtractInput",
                 "CompletionInput"):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["CreateJob"]["properties"]["delay"]["maximum"] == 366 * 24 * 3600 * 1000
