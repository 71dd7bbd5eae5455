"""Bad input over one real `agentqueue serve` on PostgreSQL: every API answers 4xx with a message
that says what was wrong, never a 5xx, and leaves no record behind; the OpenAPI schema says what
the service does."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env

PG = os.environ.get("AGENTQUEUE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# One body per API that accepts one, each valid but for what a test puts in it.
BODIES: dict[str, dict[str, Any]] = {
    "/agent/queue/chat": {"message": "hello"},
    "/agent/queue/batch": {"messages": [{"message": "hello"}]},
    "/api/jobs": {"type": "sentiment", "data": {"text": "hello"}},
    "/v1/jobs/sentiment": {"text": "hello"},
    "/ai/queue": {"message": "hello"},
}


async def _database() -> str | None:
    """A fresh PostgreSQL database of this module's own; None when PostgreSQL is not running."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(PG), 10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG} not reachable ({exc})")
        return None
    name = f"aqtest_{secrets.token_hex(6)}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    database = await _database()
    if database is None:
        pytest.skip(f"PostgreSQL at {PG} not reachable")
    base = PG.rsplit("/", 1)[0]
    env = serve_env(tmp_path_factory.mktemp("data"), DATABASE_URL=f"{base}/{database}")
    keys = {"alice": create_key(env, "--user", "alice", "--org", "acme"),
            "root": create_key(env, "--user", "root", "--org", "ops", "--admin")}
    try:
        with agentqueue("serve", env, tmp_path_factory.mktemp("logs") / "serve.log") as proc:
            await proc.wait_healthy()
            yield {"proc": proc, "keys": keys}
    finally:
        await _drop(database)
        await delete_service_keys(env)


def client(service: dict[str, Any], who: str = "alice") -> httpx.AsyncClient:
    proc: AgentqueueProcess = service["proc"]
    return httpx.AsyncClient(base_url=proc.base_url, timeout=30,
                             headers={"Authorization": f"Bearer {service['keys'][who]}"})


async def job_count(http: httpx.AsyncClient) -> int:
    listed = await http.get("/api/jobs")
    assert listed.status_code == 200, listed.text
    return int(listed.json()["total"])


def raw_json(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


# --- 12: NaN and Infinity ---------------------------------------------------------------------


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_or_infinity_anywhere_in_a_body_is_400_and_no_job(
    service, path: str, constant: str
) -> None:
    async with client(service) as http:
        before = await job_count(http)
        body = '{"probe": {"score": ' + constant + "}, " + json.dumps(BODIES[path])[1:]
        answer = await http.post(path, **raw_json(body))
        assert answer.status_code == 400, answer.text
        message = answer.json()["message"]
        assert message.startswith("body: invalid JSON at line 1 column 21: ")
        assert f"{constant.lstrip('-')} is not a JSON number" in message
        assert await job_count(http) == before


async def test_malformed_json_says_where_and_what(service) -> None:
    async with client(service) as http:
        answer = await http.post("/v1/jobs/sentiment", **raw_json('{"text": "hi"\n "x": 1}'))
        assert answer.status_code == 400
        assert answer.json() == {
            "success": False,
            "message": "body: invalid JSON at line 2 column 2: Expecting ',' delimiter",
        }


@pytest.mark.parametrize("depth", [300, 5000])
async def test_a_body_nested_too_deeply_is_400_and_no_job(service, depth: int) -> None:
    """Found after issue 7's list: 300 levels inside a job's data answered 500 (the answer
    could not be serialized), 5,000 levels an unhelpful "error parsing the body"."""
    async with client(service) as http:
        before = await job_count(http)
        nested = "[" * depth + "]" * depth
        body = '{"type": "summarize", "data": {"text": "Hello there.", "x": ' + nested + "}}"
        answer = await http.post("/api/jobs", **raw_json(body))
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"] == "body: JSON nested deeper than 64 levels"
        assert await job_count(http) == before


# --- 13: NUL characters -----------------------------------------------------------------------


@pytest.mark.parametrize("path", list(BODIES))
async def test_nul_in_any_body_string_is_400_naming_the_field(service, path: str) -> None:
    async with client(service) as http:
        before = await job_count(http)
        body = {**BODIES[path], "metadata": {"tags": ["ok", "bad\x00tag"]}}
        answer = await http.post(path, json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"] == (
            "body.metadata.tags[1]: must not contain NUL characters (\\u0000)"
        )
        key = await http.post(path, json={**BODIES[path], "k\x00": 1})
        assert key.status_code == 400, key.text
        assert await job_count(http) == before


@pytest.mark.parametrize("method,path", [
    ("GET", "/agent/queue/job/1%00"), ("GET", "/agent/queue/job/1%00/result"),
    ("DELETE", "/agent/queue/job/1%00"), ("POST", "/agent/queue/job/1%00/retry"),
    ("GET", "/api/jobs/ai-jobs:1%00"), ("PATCH", "/api/jobs/ai-jobs:1%00/cancel"),
    ("POST", "/api/jobs/ai-jobs:1%00/retry"), ("GET", "/v1/jobs/1%00"),
    ("GET", "/ai/jobs/1%00"), ("DELETE", "/ai/jobs/1%00"),
    ("GET", "/api/jobs?type=a%00b"), ("GET", "/api/usage?organizationId=a%00b"),
])
async def test_nul_in_a_path_id_or_query_is_400(service, method: str, path: str) -> None:
    async with client(service, "root") as http:
        answer = await http.request(method, path)
        assert answer.status_code == 400, answer.text
        assert "must not contain NUL characters" in answer.json()["message"]


# --- 14: integer query parameters are bounded -------------------------------------------------


@pytest.mark.parametrize("path", ["/api/jobs", "/v1/jobs"])
async def test_an_offset_past_any_sql_integer_is_400(service, path: str) -> None:
    async with client(service) as http:
        for offset in (2**63, 2**64 + 5):
            answer = await http.get(path, params={"offset": offset})
            assert answer.status_code == 400, answer.text
            assert answer.json()["message"].startswith("offset: ")


async def test_an_age_past_a_century_is_400(service) -> None:
    async with client(service, "root") as http:
        for path in ("/agent/queue/clean", "/v1/admin/queue/clean"):
            answer = await http.post(path, params={"olderThan": 2**63})
            assert answer.status_code == 400, answer.text
            assert answer.json()["message"].startswith("olderThan: ")


# --- 15: ids that name BullMQ's own keys ------------------------------------------------------


JOB_ENDPOINTS = [
    ("GET", "/agent/queue/job/{id}"), ("GET", "/agent/queue/job/{id}/result"),
    ("DELETE", "/agent/queue/job/{id}"), ("POST", "/agent/queue/job/{id}/retry"),
    ("GET", "/api/jobs/ai-jobs:{id}"), ("PATCH", "/api/jobs/ai-jobs:{id}/cancel"),
    ("POST", "/api/jobs/ai-jobs:{id}/retry"), ("GET", "/v1/jobs/{id}"),
    ("GET", "/ai/jobs/{id}"), ("DELETE", "/ai/jobs/{id}"),
]


@pytest.mark.parametrize("key", ["id", "wait", "events", "meta", "1:logs"])
@pytest.mark.parametrize("who", ["alice", "root"])
async def test_a_queue_key_as_job_id_is_not_found_and_left_alone(
    service, key: str, who: str
) -> None:
    async with client(service, who) as http:
        queued = await http.post("/ai/queue", json={"message": "Say hello"})
        assert queued.status_code == 201, queued.text
        for method, template in JOB_ENDPOINTS:
            path = template.format(id=key)
            answer = await http.request(method, path)
            assert answer.status_code == 404, f"{method} {path}: {answer.text}"
            assert answer.json() == {"success": False, "message": f"Job {key} not found"} or (
                # seed 001 names the job by its full reference
                answer.json()["message"] == f"Job ai-jobs:{key} not found"
            )
        # the queues still work: their settings and counters were not touched
        again = await http.post("/ai/queue", json={"message": "Say hello"})
        assert int(again.json()["jobId"]) == int(queued.json()["jobId"]) + 1
        assert (await http.get(f"/ai/jobs/{again.json()['jobId']}")).status_code == 200


# --- 16: the OpenAPI schema is the truth ------------------------------------------------------

# Answered to anyone, with no credentials and no per-caller rate: health and orchestrator probes.
PUBLIC_PROBES = ("/agent/queue/health", "/livez", "/readyz")


async def test_every_operation_documents_400_with_the_error_model_and_no_422(service) -> None:
    async with client(service) as http:
        schema = (await http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            # No 422 for bad input (400 is); a 422 only for a reused Idempotency-Key.
            assert "422" not in responses or "Idempotency-Key" in responses["422"][
                "description"], f"{method} {path}"
            assert responses["400"]["content"]["application/json"]["schema"] == error_ref
            assert "503" in responses
            if "{" in path:
                assert "404" in responses, f"{method} {path}"
            if "requestBody" in operation:
                assert "413" in responses, f"{method} {path}"
            if path not in PUBLIC_PROBES:
                assert {"401", "429"} <= responses.keys(), f"{method} {path}"
    for path in ("/agent/queue/pause", "/v1/admin/queue/clean"):
        assert "403" in schema["paths"][path]["post"]["responses"]
    assert "409" in schema["paths"]["/api/jobs/{job_ref}/retry"]["post"]["responses"]


async def test_the_schema_states_the_length_rules_the_service_enforces(service) -> None:
    async with client(service) as http:
        schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]
        assert schemas["CreateJob"]["properties"]["type"]["minLength"] == 1
        provider = schemas["SummarizeInput"]["properties"]["provider"]["anyOf"][0]
        assert provider["minLength"] == 1
        labels = schemas["ClassifyInput"]["properties"]["labels"]["anyOf"][0]
        assert labels["items"]["minLength"] == 1
        for path, body in [("/api/jobs", {"type": "", "data": {}}),
                           ("/v1/jobs/summarize", {"text": "Hi there.", "provider": ""}),
                           ("/v1/jobs/classify", {"text": "Hi there.", "labels": [""]}),
                           ("/v1/jobs/classify", {"text": "Hi there.", "labels": [" "]})]:
            answer = await http.post(path, json=body)
            assert answer.status_code == 400, f"{path} {body}: {answer.text}"
        blank = await http.post("/v1/jobs/classify", json={"text": "Hi.", "labels": ["a", " "]})
        assert blank.json()["message"] == "labels[1]: must not be blank"


@pytest.mark.parametrize("value", [False, True, "1"])
async def test_temperature_must_be_a_number(service, value: Any) -> None:
    async with client(service) as http:
        answer = await http.post("/ai/queue", json={"message": "hi", "temperature": value})
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"] == "temperature: Input should be a valid number"


@pytest.mark.parametrize("since", ["0", "1700000000", "2024-13-01", "yesterday"])
async def test_usage_since_is_a_calendar_day(service, since: str) -> None:
    async with client(service) as http:
        answer = await http.get("/api/usage", params={"since": since})
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"].startswith("since: ")
        assert (await http.get("/api/usage", params={"since": "2024-02-29"})).status_code == 200


@pytest.mark.parametrize("method,path", [("POST", "/v1/jobs/bogus"), ("GET", "/nowhere"),
                                         ("PUT", "/agent/queue/job/1")])
async def test_an_unknown_path_is_404_with_the_error_body(service, method: str, path: str) -> None:
    async with client(service) as http:
        answer = await http.request(method, path)
        assert answer.status_code == 404
        assert answer.json() == {"success": False, "message": f"Not found: {method} {path}"}


async def test_a_provider_error_names_the_field_without_a_leading_dot(service) -> None:
    async with client(service) as http:
        answer = await http.post("/v1/jobs/summarize", json={"text": "Hi.", "provider": "bogus"})
        assert answer.status_code == 400
        assert answer.json()["message"].startswith("provider: 'bogus' is not configured")
        seed001 = await http.post("/api/jobs", json={"type": "summarize",
                                                     "data": {"text": "Hi.", "provider": "bogus"}})
        assert seed001.json()["message"].startswith("data.provider: 'bogus' is not configured")
