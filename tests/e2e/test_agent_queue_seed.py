"""Seed 000 end to end: its curl examples and usage patterns against a real `agentqueue serve`.

Unset REDIS_URL, the service starts its own embedded Valkey, exactly as `make run` does.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
from bullmq import Job, Queue

from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import delete_service_keys, serve_env
from tests.support.waiting import eventually

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MAX_CHARS = 2000


def dataset_rows() -> list[dict[str, str]]:
    text = resources.files("agentqueue").joinpath("data/startups.csv").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def companies_backed_by(investor: str) -> list[str]:
    return [r["company"] for r in dataset_rows() if investor in r["investors"].split(";")]


@pytest.fixture(scope="module")
def service_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield serve_env(tmp_path_factory.mktemp("serve-data"), MAX_MESSAGE_CHARS=str(MAX_CHARS),
                    LOG_LEVEL="INFO")


@pytest.fixture(scope="module")
async def service(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AgentqueueProcess]:
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    with agentqueue("serve", service_env, log) as proc:
        await proc.wait_healthy()
        yield proc
    await delete_service_keys(service_env)


@pytest.fixture
async def http(service: AgentqueueProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
        yield client


async def wait_for_status(http: httpx.AsyncClient, job_id: str, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
        return job if job["status"] in statuses else None

    return await eventually(probe, what=f"job {job_id} to be {statuses}")


async def queue_chat(http: httpx.AsyncClient, **body: Any) -> str:
    answer = await http.post("/agent/queue/chat", json=body)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["jobId"]
    return job_id


# -- the curl examples ------------------------------------------------------------------------


async def test_queue_chat_then_job_status_as_in_the_seed(
    http: httpx.AsyncClient, service: AgentqueueProcess
) -> None:
    answer = await http.post(
        "/agent/queue/chat",
        json={"message": "What deals did Mark Cuban make?", "userId": "user123"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert body["success"] is True and body["message"] == "Chat job queued successfully"
    job_id = body["jobId"]
    assert body["statusUrl"] == f"/agent/queue/job/{job_id}"
    assert ISO_MS.match(body["timestamp"])

    job = await wait_for_status(http, job_id, "completed")
    assert job["id"] == job_id and job["progress"] == 100 and job["attemptsMade"] == 1
    assert job["data"]["message"] == "What deals did Mark Cuban make?"
    assert job["data"]["userId"] == "user123"
    for stamp in ("createdAt", "processedAt", "finishedAt"):
        assert ISO_MS.match(job[stamp]), stamp
    assert job["createdAt"] <= job["processedAt"] <= job["finishedAt"]
    result = job["result"]
    backed = companies_backed_by("Mark Cuban")
    assert backed and all(company in result["response"] for company in backed)
    assert result["sessionId"].startswith("session_")
    assert isinstance(result["processingTime"], int) and ISO_MS.match(result["timestamp"])
    assert result["provider"] == "builtin"

    await service.wait_log(f'[AgentQueueProcessor] Processing job {job_id} for message: "What')
    await service.wait_log(f"[AgentQueueProcessor] Job {job_id} completed in ")


async def test_pattern_1_poll_the_result_endpoint(http: httpx.AsyncClient) -> None:
    job_id = await queue_chat(http, message="Show me food companies", userId="user123")

    async def result() -> dict[str, Any] | None:
        data: dict[str, Any] = (await http.get(f"/agent/queue/job/{job_id}/result")).json()
        if data["success"] is False:
            assert data["message"] == "Job is still processing", data
            assert data["status"] in ("waiting", "active") and "progress" in data
            return None
        return data

    data = await eventually(result, what="the result")
    food = [r["company"] for r in dataset_rows() if r["category"] == "Food"]
    assert all(company in data["result"]["response"] for company in food)
    assert "Quillstack" not in data["result"]["response"]  # a Technology company


async def test_pattern_2_batch_answers_every_message_in_order(http: httpx.AsyncClient) -> None:
    answer = await http.post("/agent/queue/batch", json={
        "messages": [
            {"message": "What deals did Mark Cuban make?"},
            {"message": "Show me food companies"},
            {"message": "Calculate 100000 / 0.10"},
        ],
        "userId": "user123",
    })
    assert answer.status_code == 201
    body = answer.json()
    assert body["messageCount"] == 3 and body["message"] == "Batch chat job queued successfully"
    job = await wait_for_status(http, body["jobId"], "completed")
    results = job["result"]["results"]
    assert [r["message"] for r in results] == [
        "What deals did Mark Cuban make?", "Show me food companies", "Calculate 100000 / 0.10",
    ]
    assert all(r["success"] for r in results) and job["progress"] == 100
    assert companies_backed_by("Mark Cuban")[0] in results[0]["response"]
    assert "Brinewave Pickle Co." in results[1]["response"]
    assert "1,000,000" in results[2]["response"]
    assert job["result"]["total"] == 3 and job["result"]["succeeded"] == 3


async def test_pattern_3_conversation_history_is_honoured(http: httpx.AsyncClient) -> None:
    job_id = await queue_chat(
        http,
        message="Tell me more about the first one",
        sessionId="session_123",
        conversationHistory=[
            {"role": "user", "content": "What deals did Mark Cuban make?"},
            {"role": "assistant", "content": "Mark Cuban has made several deals..."},
        ],
        userId="user123",
    )
    job = await wait_for_status(http, job_id, "completed")
    assert job["result"]["sessionId"] == "session_123"
    first = companies_backed_by("Mark Cuban")[0]
    assert first in job["result"]["response"]


async def test_a_session_remembers_earlier_turns(http: httpx.AsyncClient) -> None:
    session = f"session_{uuid.uuid4().hex[:8]}"
    first = await queue_chat(http, message="Show me pets companies", sessionId=session)
    await wait_for_status(http, first, "completed")
    follow_up = await queue_chat(
        http, message="Tell me more about the first one", sessionId=session
    )
    job = await wait_for_status(http, follow_up, "completed")
    first_pet = next(r for r in dataset_rows() if r["category"] == "Pets")
    assert first_pet["company"] in job["result"]["response"]


# -- validation and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": 42}, "message"),
        ({"message": "x" * (MAX_CHARS + 1)}, "message"),
        ({"message": "hi", "conversationHistory": [{"role": "wizard", "content": "x"}]},
         "conversationHistory[0].role"),
        ({"message": "hi", "conversationHistory": "not a list"}, "conversationHistory"),
    ],
)
async def test_bad_chat_input_is_a_400_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], names: str
) -> None:
    answer = await http.post("/agent/queue/chat", json=body)
    assert answer.status_code == 400
    assert answer.json()["success"] is False and names in answer.json()["message"]


async def test_bad_batch_input_is_a_400(http: httpx.AsyncClient) -> None:
    for body in ({"messages": []}, {"messages": [{"message": ""}]}, {}):
        answer = await http.post("/agent/queue/batch", json=body)
        assert answer.status_code == 400 and "messages" in answer.json()["message"]


async def test_malformed_json_is_a_400(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/agent/queue/chat", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400 and answer.json()["success"] is False


@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        ("GET", "/agent/queue/jobs?limit=abc", "limit"),
        ("GET", "/agent/queue/jobs?limit=0", "limit"),
        ("GET", "/agent/queue/jobs?status=exploded", "status"),
        ("POST", "/agent/queue/clean?olderThan=soon", "olderThan"),
        ("POST", "/agent/queue/clean?olderThan=-5", "olderThan"),
    ],
)
async def test_bad_query_parameters_are_a_400(
    http: httpx.AsyncClient, method: str, path: str, names: str
) -> None:
    answer = await http.request(method, path)
    assert answer.status_code == 400
    assert answer.json()["success"] is False and names in answer.json()["message"]


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/result"), ("DELETE", ""), ("POST", "/retry")]
)
async def test_unknown_job_is_a_404(http: httpx.AsyncClient, method: str, suffix: str) -> None:
    answer = await http.request(method, f"/agent/queue/job/987654321{suffix}")
    assert answer.status_code == 404
    assert answer.json() == {"success": False, "message": "Job 987654321 not found"}


async def test_retrying_or_cancelling_a_completed_job_is_a_409(http: httpx.AsyncClient) -> None:
    job_id = await queue_chat(http, message="Calculate 2 + 2")
    await wait_for_status(http, job_id, "completed")
    retry = await http.post(f"/agent/queue/job/{job_id}/retry")
    assert retry.status_code == 409 and "completed" in retry.json()["message"]
    cancel = await http.delete(f"/agent/queue/job/{job_id}")
    assert cancel.status_code == 409


# -- queue management -------------------------------------------------------------------------


async def test_pause_holds_jobs_cancel_and_resume(http: httpx.AsyncClient) -> None:
    assert (await http.post("/agent/queue/pause")).json() == {
        "success": True, "message": "Queue paused",
    }
    try:
        held = await queue_chat(http, message="Calculate 6 * 7")
        doomed = await queue_chat(http, message="Calculate 1 + 1")
        assert (await wait_for_status(http, held, "paused"))["progress"] == 0
        stats = (await http.get("/agent/queue/stats")).json()["stats"]
        assert stats["paused"] >= 2
        assert stats["total"] == sum(v for k, v in stats.items() if k != "total")

        cancel = await http.delete(f"/agent/queue/job/{doomed}")
        assert cancel.json() == {"success": True, "message": "Job cancelled successfully"}
        job = (await http.get(f"/agent/queue/job/{doomed}")).json()["job"]
        assert job["status"] == "failed" and job["failedReason"] == "Cancelled by user"
        result = (await http.get(f"/agent/queue/job/{doomed}/result")).json()
        assert result == {"success": False, "message": "Job failed", "error": "Cancelled by user"}
    finally:
        assert (await http.post("/agent/queue/resume")).json()["message"] == "Queue resumed"
    job = await wait_for_status(http, held, "completed")
    assert "42" in job["result"]["response"]


async def test_recent_jobs_filter_and_limit(http: httpx.AsyncClient) -> None:
    ids = [await queue_chat(http, message=f"Calculate {n} + 1") for n in range(3)]
    for job_id in ids:
        await wait_for_status(http, job_id, "completed")
    recent = (await http.get("/agent/queue/jobs", params={"limit": 2})).json()
    assert recent["success"] is True and recent["count"] == 2 == len(recent["jobs"])

    async def completed_listing() -> list[dict[str, Any]] | None:
        # The listing reads the records, which follow Redis (where GET /job/:id looks first)
        # a moment after a job ends: wait for them to catch up, with a deadline.
        jobs: list[dict[str, Any]] = (
            await http.get("/agent/queue/jobs?status=completed&limit=50")).json()["jobs"]
        return jobs if set(ids) <= {j["id"] for j in jobs} else None

    done = await eventually(completed_listing, what=f"jobs {ids} listed as completed")
    assert {j["status"] for j in done} == {"completed"}
    newest_first = [int(j["id"]) for j in done]
    assert newest_first == sorted(newest_first, reverse=True)
    assert {"id", "status", "progress", "data", "result", "createdAt", "finishedAt"} <= set(done[0])


async def test_clean_drops_finished_jobs_from_redis_but_records_keep_them(
    http: httpx.AsyncClient,
) -> None:
    job_id = await queue_chat(http, message="Calculate 3 * 3")
    done = await wait_for_status(http, job_id, "completed")
    kept = await http.post("/agent/queue/clean")
    assert kept.json()["message"] == "Cleaned jobs older than 86400000ms"
    cleaned = await http.post("/agent/queue/clean?olderThan=0")
    assert cleaned.json()["removed"] >= 1
    assert (await http.get("/agent/queue/stats")).json()["stats"]["completed"] == 0
    # Gone from Redis, still answered from its durable record, result and all. The record
    # follows Redis by one group commit, and the job was cleaned from Redis meanwhile: until the
    # record catches up it reads as the worker last wrote it (`active`), so wait with a deadline.

    async def from_record() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/agent/queue/job/{job_id}")).json()["job"]
        return job if job["status"] == "completed" else None

    after = await eventually(from_record, what=f"job {job_id}'s record completed")
    assert after["result"] == done["result"]
    assert after["finishedAt"] is not None
    listed = (await http.get("/agent/queue/jobs?status=completed&limit=100")).json()["jobs"]
    assert job_id in [j["id"] for j in listed]
    result = (await http.get(f"/agent/queue/job/{job_id}/result")).json()
    assert result["success"] is True and "9" in result["result"]["response"]


async def test_health_and_docs(http: httpx.AsyncClient) -> None:
    health = (await http.get("/agent/queue/health")).json()
    assert health["success"] is True and health["status"] == "healthy"
    assert health["service"] == "Agent Queue" and ISO_MS.match(health["timestamp"])
    assert set(health["stats"]) == {"waiting", "active", "completed", "failed"}
    assert (await http.get("/docs")).status_code == 200
    paths = (await http.get("/openapi.json")).json()["paths"]
    # 12 routes in 11 paths, and the job's event stream (push updates)
    assert len([p for p in paths if p.startswith("/agent/queue")]) == 12
    assert "/agent/queue/job/{job_id}/events" in paths


# -- BullMQ interop ---------------------------------------------------------------------------


async def test_a_plain_bullmq_producer_is_served_by_our_worker(
    http: httpx.AsyncClient, service_env: dict[str, str], service: AgentqueueProcess
) -> None:
    url = service_env.get("REDIS_URL") or _embedded_url(service)
    queue = Queue("agent-queue", {"connection": url, "prefix": service_env["QUEUE_PREFIX"]})
    try:
        job = await queue.add("chat", {"message": "Calculate 100000 / 0.10"})

        async def answered() -> Any:
            fetched = await Job.fromId(queue, job.id)
            return fetched.returnvalue if fetched else None

        result = await eventually(answered, what="the worker's return value")
        assert "1,000,000" in result["response"]
        # The job is visible through our HTTP API too.
        assert (await http.get(f"/agent/queue/job/{job.id}")).json()["job"]["status"] == "completed"
    finally:
        await queue.close()


def _embedded_url(service: AgentqueueProcess) -> str:
    found = re.search(r"Embedded Valkey listening on (redis://\S+)", service.log())
    assert found, "the service did not log its embedded Valkey URL"
    return found.group(1)
