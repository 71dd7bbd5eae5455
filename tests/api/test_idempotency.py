"""`Idempotency-Key` on every create endpoint of every API: one job per key and caller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentqueue.api.app import create_app
from agentqueue.config import Settings
from agentqueue.services import Services

TEXT = "Queues hold work. Workers take it. Results come back."
# Every create route of the five seeds' APIs, with a body it accepts, and where the new job's
# id is in its answer.
CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("/agent/queue/chat", {"message": "hello"}, "jobId"),
    ("/agent/queue/batch", {"messages": [{"message": "a"}, {"message": "b"}]}, "jobId"),
    ("/api/jobs", {"type": "summarize", "data": {"text": TEXT}}, "id"),
    ("/v1/jobs/summarize", {"text": TEXT}, "id"),
    ("/v1/jobs/classify", {"text": TEXT, "labels": ["queues", "cooking"]}, "id"),
    ("/v1/jobs/sentiment", {"text": TEXT}, "id"),
    ("/v1/jobs/translate", {"text": TEXT, "targetLanguage": "fr"}, "id"),
    ("/v1/jobs/extract",
     {"text": TEXT, "schema": {"type": "object", "properties": {"topic": {"type": "string"}}}},
     "id"),
    ("/ai/queue", {"message": "hello"}, "jobId"),
]


@contextlib.asynccontextmanager
async def api(redis_url: str, prefix: str, tmp_path: Path
              ) -> AsyncIterator[tuple[FastAPI, Services, dict[str, str]]]:
    """The API (no worker), and an API key each for users alice and bob."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix, AGENTQUEUE_DATA_DIR=tmp_path)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        keys = {user: (await services.records.create_api_key(
            user_id=user, org_id="acme", is_admin=False))[0] for user in ("alice", "bob")}
        yield app, services, keys


def http(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.mark.parametrize(("path", "body", "id_field"), CREATES)
async def test_the_same_key_answers_the_same_job_with_200(
    redis_url: str, prefix: str, tmp_path: Path, path: str, body: dict[str, Any], id_field: str
) -> None:
    async with api(redis_url, prefix, tmp_path) as (app, services, keys), \
            http(app, keys["alice"]) as alice:
        first = await alice.post(path, json=body, headers={"Idempotency-Key": "order-1"})
        assert first.status_code == 201, first.text
        again = await alice.post(path, json=body, headers={"Idempotency-Key": "order-1"})
        assert again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert (await services.records.list_jobs())[1] == 1  # one job, not two
        # The same body without a key is a new job, as before.
        plain = await alice.post(path, json=body)
        assert plain.status_code == 201
        assert plain.json()[id_field] != first.json()[id_field]


async def test_the_same_key_with_another_body_is_refused_with_422(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with api(redis_url, prefix, tmp_path) as (app, services, keys), \
            http(app, keys["alice"]) as alice:
        headers = {"Idempotency-Key": "k-1"}
        assert (await alice.post("/v1/jobs/summarize", json={"text": TEXT},
                                 headers=headers)).status_code == 201
        other = await alice.post("/v1/jobs/summarize", json={"text": "Something else."},
                                 headers=headers)
        assert other.status_code == 422
        assert "Idempotency-Key 'k-1' was already used with a different request" in (
            other.json()["message"])
        # Another route with the same key is another request too.
        elsewhere = await alice.post("/v1/jobs/sentiment", json={"text": TEXT}, headers=headers)
        assert elsewhere.status_code == 422
        # Key order and spacing in the JSON do not make it another request.
        same = await alice.post("/v1/jobs/summarize", content=f'{{ "text" : "{TEXT}" }}',
                                headers={**headers, "Content-Type": "application/json"})
        assert same.status_code == 200
        assert (await services.records.list_jobs())[1] == 1


async def test_keys_are_per_caller(redis_url: str, prefix: str, tmp_path: Path) -> None:
    async with api(redis_url, prefix, tmp_path) as (app, services, keys), \
            http(app, keys["alice"]) as alice, http(app, keys["bob"]) as bob:
        headers = {"Idempotency-Key": "same-key"}
        mine = await alice.post("/api/jobs", json=CREATES[2][1], headers=headers)
        theirs = await bob.post("/api/jobs", json=CREATES[2][1], headers=headers)
        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert mine.json()["id"] != theirs.json()["id"]
        assert theirs.json()["userId"] == "bob"
        # Bob's replay is his own job, never Alice's.
        replay = await bob.post("/api/jobs", json=CREATES[2][1], headers=headers)
        assert replay.json()["id"] == theirs.json()["id"]


async def test_concurrent_requests_with_one_key_create_one_job(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with api(redis_url, prefix, tmp_path) as (app, services, keys), \
            http(app, keys["alice"]) as alice:
        answers = await asyncio.gather(*(
            alice.post("/agent/queue/chat", json={"message": "once"},
                       headers={"Idempotency-Key": "burst"}) for _ in range(12)))
        assert sorted(a.status_code for a in answers) == [200] * 11 + [201]
        assert len({a.json()["jobId"] for a in answers}) == 1
        assert (await services.records.list_jobs())[1] == 1
        assert sum((await services.agent_queue.counts()).values()) == 1


async def test_a_refused_first_request_leaves_the_key_free(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with api(redis_url, prefix, tmp_path) as (app, services, keys), \
            http(app, keys["alice"]) as alice:
        headers = {"Idempotency-Key": "retry-me"}
        bad = await alice.post("/v1/jobs/summarize", json={"text": ""}, headers=headers)
        assert bad.status_code == 400
        fixed = await alice.post("/v1/jobs/summarize", json={"text": TEXT}, headers=headers)
        assert fixed.status_code == 201


async def test_a_malformed_key_is_a_400(redis_url: str, prefix: str, tmp_path: Path) -> None:
    async with api(redis_url, prefix, tmp_path) as (app, services, keys), \
            http(app, keys["alice"]) as alice:
        answer = await alice.post("/v1/jobs/summarize", json={"text": TEXT},
                                  headers={"Idempotency-Key": "x" * 256})
        assert answer.status_code == 400
        assert "Idempotency-Key: 1 to 255 printable ASCII characters" in answer.json()["message"]
        assert (await services.records.list_jobs())[1] == 0
