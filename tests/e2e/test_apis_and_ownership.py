"""Seeds 001, 003 and 004 over one `agentqueue serve`, with real API keys and JWTs, and every
job endpoint checked for ownership: someone else's job is a 404, never a 403."""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.processes import AgentqueueProcess, agentqueue
from tests.support.service import create_key, delete_service_keys, serve_env
from tests.support.waiting import eventually

JWT_SECRET = "test-secret-with-enough-length-for-hs256"


@pytest.fixture(scope="module")
async def service(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Any]]:
    env = serve_env(tmp_path_factory.mktemp("data"), JWT_SECRET=JWT_SECRET,
                    MAX_BODY_BYTES="4096")
    keys = {
        "alice": create_key(env, "--user", "alice", "--org", "acme"),
        "bob": create_key(env, "--user", "bob", "--org", "acme"),
        "carol": create_key(env, "--user", "carol", "--org", "globex"),
        "root": create_key(env, "--user", "root", "--org", "ops", "--admin"),
    }
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    with agentqueue("serve", env, log) as proc:
        await proc.wait_healthy()
        yield {"proc": proc, "keys": keys, "env": env}
    await delete_service_keys(env)


def client(service: dict[str, Any], who: str | None) -> httpx.AsyncClient:
    proc: AgentqueueProcess = service["proc"]
    headers = {"Authorization": f"Bearer {service['keys'][who]}"} if who else {}
    return httpx.AsyncClient(base_url=proc.base_url, headers=headers, timeout=30)


def token(sub: str, role: str = "admin", org: str = "ops", **extra: Any) -> str:
    claims = {"sub": sub, "org": org, "role": role, "exp": int(time.time()) + 600, **extra}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def poll(http: httpx.AsyncClient, path: str, done: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(path)).json()
        return body if done(body) else None

    return await eventually(probe, what=what)


async def test_with_keys_configured_every_request_needs_one(service) -> None:
    async with client(service, None) as anonymous:
        answer = await anonymous.get("/api/jobs")
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "keys create" in answer.json()["message"]
    async with client(service, None) as forged:
        forged.headers["Authorization"] = "Bearer aq_not-a-real-key"
        assert (await forged.get("/v1/jobs")).status_code == 401


async def test_seed_001_jobs_lifecycle_and_bad_input(service) -> None:
    async with client(service, "alice") as http:
        created = await http.post("/api/jobs", json={
            "type": "sentiment", "name": "Review mood", "description": "one review",
            "data": {"text": "What a wonderful, delightful day!"}, "priority": 5,
            "maxAttempts": 2,
        })
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["status"] == "pending" and job["name"] == "Review mood"
        assert job["userId"] == "alice" and job["organizationId"] == "acme"
        assert job["maxAttempts"] == 2 and job["id"].startswith("ai-jobs:")
        assert job["priority"] == 5  # what was sent, not BullMQ's number for it
        done = await poll(http, f"/api/jobs/{job['id']}", lambda j: j["status"] == "completed",
                          "the seed 001 job to complete")
        assert done["result"]["sentiment"] == "positive"
        assert done["progress"]["percentage"] == 100 and done["progress"]["total"] == 100
        assert done["startedAt"] and done["completedAt"] and done["priority"] == 5

        listed = (await http.get("/api/jobs", params={"type": "sentiment",
                                                      "status": "completed"})).json()
        assert job["id"] in [j["id"] for j in listed["jobs"]] and listed["total"] >= 1
        stats = (await http.get("/api/jobs/stats")).json()
        assert stats["completed"] >= 1 and stats["total"] >= stats["completed"]

        retry = await http.post(f"/api/jobs/{job['id']}/retry")
        assert retry.status_code == 409
        cancel = await http.patch(f"/api/jobs/{job['id']}/cancel")
        assert cancel.status_code == 409

        bad = await http.post("/api/jobs", json={"type": "teleport", "data": {}})
        assert bad.status_code == 400 and "type" in bad.json()["message"]
        missing = await http.post("/api/jobs", json={"type": "summarize", "data": {}})
        assert missing.status_code == 400 and "data.text" in missing.json()["message"]
        unconfigured = await http.post("/api/jobs", json={
            "type": "sentiment", "data": {"text": "x", "provider": "anthropic"}})
        assert unconfigured.status_code == 400 and "anthropic" in unconfigured.json()["message"]
        assert (await http.get("/api/jobs?limit=abc")).status_code == 400
        assert (await http.get("/api/jobs?status=exploded")).status_code == 400
        big = await http.post("/api/jobs", json={"type": "sentiment",
                                                 "data": {"text": "x" * 10_000}})
        assert big.status_code == 413 and big.json()["success"] is False


async def test_seed_003_v1_jobs_usage_fields_and_admin(service) -> None:
    async with client(service, "carol") as http:
        created = await http.post("/v1/jobs/summarize", json={
            "text": "The city approved a transport budget. It adds forty electric buses. "
                    "The weather was mild. Officials expect the buses by spring."})
        assert created.status_code == 201
        job = created.json()
        assert job["status"] == "QUEUED" and job["type"] == "SUMMARIZE"
        done = await poll(http, f"/v1/jobs/{job['id']}", lambda j: j["status"] == "SUCCEEDED",
                          "the seed 003 job to succeed")
        assert set(done["output"]) >= {"summary", "originalLength", "summaryLength"}
        assert done["tokenUsed"] == 0 and done["costCents"] == 0 and done["completedAt"]
        assert done["input"]["text"].startswith("The city")
        failed = await http.post("/v1/jobs/translate", json={"text": "hi", "targetLanguage": "fr"})
        bad = await poll(http, f"/v1/jobs/{failed.json()['id']}",
                         lambda j: j["status"] == "FAILED", "translation offline to fail")
        assert "OPENAI_API_KEY" in bad["error"]
        listing = (await http.get("/v1/jobs?limit=10&offset=0")).json()
        assert {j["id"] for j in listing["jobs"]} >= {job["id"], failed.json()["id"]}
        assert (await http.post("/v1/jobs/classify", json={"text": ""})).status_code == 400
        # Admin endpoints want an admin: carol's key is not one.
        assert (await http.get("/v1/admin/queue/metrics")).status_code == 403

    async with client(service, None) as admin:
        admin.headers["Authorization"] = f"Bearer {token('ops-lead')}"
        metrics = (await admin.get("/v1/admin/queue/metrics")).json()
        assert metrics["queue"] == "ai-jobs" and metrics["total"] >= 2
        everything = (await admin.get("/v1/admin/queue/metrics/all")).json()
        assert {"aiJobs", "aiTasks", "agentQueue", "agentTasks"} <= set(everything)
        assert (await admin.post("/v1/admin/queue/pause?queue=ai-tasks")).json()["success"]
        assert everything["aiTasks"]["queue"] == "ai-tasks"
        assert (await admin.get("/v1/admin/queue/metrics?queue=ai-tasks")).json()["paused"]
        assert (await admin.post("/v1/admin/queue/resume?queue=ai-tasks")).json()["success"]
        cleaned = await admin.post("/v1/admin/queue/clean?queue=ai-jobs&olderThan=0")
        assert cleaned.json()["removed"] >= 1
        assert (await admin.post("/v1/admin/queue/pause?queue=nope")).status_code == 404
        admin.headers["Authorization"] = f"Bearer {token('eve', role='user')}"
        assert (await admin.get("/v1/admin/queue/metrics")).status_code == 403
        admin.headers["Authorization"] = "Bearer " + jwt.encode(
            {"sub": "x", "role": "admin", "exp": int(time.time()) + 60}, "w" * 40, "HS256")
        assert (await admin.get("/v1/admin/queue/metrics")).status_code == 401

    async with client(service, "carol") as http:
        # Cleaned from Redis, still there with its output: records outlive retention (they
        # follow Redis by one group commit, hence the deadline).
        async def kept() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(f"/v1/jobs/{job['id']}")).json()
            return body if body["status"] == "SUCCEEDED" else None

        assert (await eventually(kept, what="the cleaned job's record"))["output"]["summary"]


async def test_seed_004_ai_queue(service) -> None:
    async with client(service, "bob") as http:
        queued = await http.post("/ai/queue", json={"conversationId": "c-1", "message": "Hi"})
        assert queued.status_code == 201
        body = queued.json()
        assert body["status"] == "queued"
        job = await poll(http, f"/ai/jobs/{body['jobId']}", lambda j: j["state"] == "failed",
                         "the offline completion to fail")
        assert "OPENAI_API_KEY" in job["failedReason"] and job["attempts"] == 1
        assert (await http.post("/ai/queue", json={"message": ""})).status_code == 400
        assert (await http.delete(f"/ai/jobs/{body['jobId']}")).status_code == 409


async def test_usage_by_day_model_and_type(service) -> None:
    async with client(service, "alice") as http:
        usage = (await http.get("/api/usage")).json()
        assert usage["usage"] and all(row["type"] for row in usage["usage"])
        assert usage["totals"]["jobs"] == sum(r["jobs"] for r in usage["usage"])
        other = await http.get("/api/usage?organizationId=globex")
        assert other.status_code == 403
    async with client(service, "root") as admin:
        globex = (await admin.get("/api/usage?organizationId=globex")).json()
        assert globex["totals"]["jobs"] >= 2  # carol's summarize and translate


async def one_job_per_api(http: httpx.AsyncClient) -> dict[str, str]:
    """Submit a job through each API: its id by API ("chat", "seed1", "v1", "ai")."""
    chat = (await http.post("/agent/queue/chat", json={"message": "Calculate 2+2"})).json()
    seed1 = (await http.post("/api/jobs", json={"type": "sentiment",
                                                "data": {"text": "fine"}})).json()
    v1 = (await http.post("/v1/jobs/sentiment", json={"text": "fine"})).json()
    ai = (await http.post("/ai/queue", json={"message": "hello"})).json()
    return {"chat": chat["jobId"], "seed1": seed1["id"], "v1": v1["id"], "ai": ai["jobId"]}


def job_endpoints(ids: dict[str, str]) -> list[tuple[str, str]]:
    """Every endpoint that reads or acts on one job, for the jobs of `one_job_per_api`."""
    return [
        ("GET", f"/agent/queue/job/{ids['chat']}"),
        ("GET", f"/agent/queue/job/{ids['chat']}/result"),
        ("DELETE", f"/agent/queue/job/{ids['chat']}"),
        ("POST", f"/agent/queue/job/{ids['chat']}/retry"),
        ("GET", f"/api/jobs/{ids['seed1']}"),
        ("PATCH", f"/api/jobs/{ids['seed1']}/cancel"),
        ("POST", f"/api/jobs/{ids['seed1']}/retry"),
        ("GET", f"/v1/jobs/{ids['v1']}"),
        ("GET", f"/ai/jobs/{ids['ai']}"),
        ("DELETE", f"/ai/jobs/{ids['ai']}"),
    ]


async def test_someone_elses_job_is_not_found_on_every_endpoint(service) -> None:
    async with client(service, "alice") as alice:
        ids = await one_job_per_api(alice)
        await poll(alice, f"/agent/queue/job/{ids['chat']}",
                   lambda b: b["job"]["status"] == "completed", "alice's chat")

    probes = job_endpoints(ids)
    async with client(service, "carol") as carol:  # another organization
        for method, path in probes:
            answer = await carol.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
        # Listings and counts leave alice's jobs out.
        assert ids["seed1"] not in [j["id"] for j in (await carol.get("/api/jobs")).json()["jobs"]]
        assert ids["v1"] not in [j["id"] for j in (await carol.get("/v1/jobs")).json()["jobs"]]
        recent = (await carol.get("/agent/queue/jobs?limit=100")).json()["jobs"]
        assert ids["chat"] not in [j["id"] for j in recent]
        assert (await carol.post("/agent/queue/pause")).status_code == 403
    async with client(service, "bob") as bob:  # same organization, not its admin
        assert (await bob.get(f"/api/jobs/{ids['seed1']}")).status_code == 404
        assert (await bob.get(f"/agent/queue/job/{ids['chat']}")).status_code == 404
    async with client(service, None) as org_admin:
        org_admin.headers["Authorization"] = f"Bearer {token('dana', 'org_admin', 'acme')}"
        assert (await org_admin.get(f"/api/jobs/{ids['seed1']}")).status_code == 200
        org_admin.headers["Authorization"] = f"Bearer {token('erin', 'org_admin', 'globex')}"
        assert (await org_admin.get(f"/api/jobs/{ids['seed1']}")).status_code == 404
    async with client(service, "root") as root:  # an admin key sees everything
        for method, path in probes[:1] + probes[4:5] + probes[7:9]:
            assert (await root.request(method, path)).status_code == 200, path


async def test_the_record_keeps_the_status_history(service, tmp_path: Path) -> None:
    from agentqueue.records.store import Records

    async with client(service, "alice") as http:
        job = (await http.post("/v1/jobs/sentiment", json={"text": "good"})).json()
        await poll(http, f"/v1/jobs/{job['id']}", lambda j: j["status"] == "SUCCEEDED",
                   "the job to succeed")
    db = Path(service["env"]["AGENTQUEUE_DATA_DIR"]) / "agentqueue.db"
    records = await Records.connect(f"sqlite+aiosqlite:///{db}")
    try:
        history = await records.history("ai-jobs", job["id"])
    finally:
        await records.close()
    # seed 002's lifecycle: pending -> queued -> running (active) -> completed
    assert [e.status for e in history] == ["pending", "queued", "active", "completed"]


# -- tenant isolation (issue 7) -----------------------------------------------------------------


def first_company(category: str) -> str:
    text = resources.files("agentqueue").joinpath("data/startups.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return next(r["company"] for r in rows if r["category"] == category)


async def chat(http: httpx.AsyncClient, message: str, session: str) -> str:
    queued = await http.post("/agent/queue/chat", json={"message": message, "sessionId": session})
    assert queued.status_code == 201, queued.text
    done = await poll(http, f"/agent/queue/job/{queued.json()['jobId']}",
                      lambda b: b["job"]["status"] in ("completed", "failed"), "the chat")
    assert done["job"]["status"] == "completed", done
    response: str = done["job"]["result"]["response"]
    return response


async def test_chat_memory_belongs_to_its_owner(service) -> None:
    session = f"session_{uuid.uuid4().hex[:8]}"
    pets, food = first_company("Pets"), first_company("Food")
    async with client(service, "alice") as alice, client(service, "carol") as carol:
        await chat(alice, "Show me pets companies", session)
        # Carol (another organization) sends alice's session id: a new, empty session.
        blind = await chat(carol, "Tell me more about the first one", session)
        assert pets not in blind and "could not tell what that refers to" in blind
        await chat(carol, "Show me food companies", session)
        assert food in await chat(carol, "Tell me more about the first one", session)
        # Alice's session holds her turns only: nothing carol said was added to it.
        follow_up = await chat(alice, "Tell me more about the first one", session)
        assert pets in follow_up and food not in follow_up


async def test_a_jwt_without_an_organization_reaches_no_organizations_jobs(service) -> None:
    async with client(service, "alice") as alice:  # alice's key is in organization acme
        ids = await one_job_per_api(alice)
        await poll(alice, f"/v1/jobs/{ids['v1']}", lambda j: j["status"] == "SUCCEEDED", "v1 job")
        await poll(alice, f"/agent/queue/job/{ids['chat']}",
                   lambda b: b["job"]["status"] == "completed", "alice's chat")
        acme_usage = (await alice.get("/api/usage")).json()["totals"]["jobs"]
        assert acme_usage >= 2

    async with client(service, None) as bare:
        # Only `sub`: the same user id, but no organization.
        bare.headers["Authorization"] = "Bearer " + jwt.encode(
            {"sub": "alice", "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256")
        for method, path in job_endpoints(ids):
            answer = await bare.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
        assert (await bare.get("/api/jobs")).json()["total"] == 0
        assert (await bare.get("/v1/jobs")).json()["total"] == 0
        assert (await bare.get("/agent/queue/jobs?limit=100")).json()["count"] == 0
        assert (await bare.get("/agent/queue/stats")).json()["stats"]["total"] == 0
        assert (await bare.get("/api/jobs/stats")).json()["total"] == 0
        assert (await bare.get("/api/usage")).json()["totals"]["jobs"] == 0
        # Its own jobs (without an organization) it does see.
        own = (await bare.post("/v1/jobs/sentiment", json={"text": "good"})).json()
        await poll(bare, f"/v1/jobs/{own['id']}", lambda j: j["status"] == "SUCCEEDED",
                   "the org-less job")
        assert [j["id"] for j in (await bare.get("/v1/jobs")).json()["jobs"]] == [own["id"]]

    async with client(service, "alice") as alice:  # and alice's key does not see that one
        assert (await alice.get(f"/v1/jobs/{own['id']}")).status_code == 404
        assert (await alice.get(f"/api/jobs/{ids['seed1']}")).status_code == 200


async def test_a_job_names_its_callers_organization_not_one_from_the_body(service) -> None:
    async with client(service, "carol") as carol:  # organization globex
        job = (await carol.post("/v1/jobs/sentiment",
                                json={"text": "fine", "organizationId": "acme"})).json()
        assert job["input"]["organizationId"] == "globex"
        await service["proc"].wait_log(f"Processing job {job['id']} of type SENTIMENT for org "
                                       "globex")
        seed1 = (await carol.post("/api/jobs", json={"type": "sentiment", "data": {
            "text": "fine", "organizationId": "acme", "userId": "alice"}})).json()
        assert seed1["data"]["organizationId"] == "globex" and seed1["data"]["userId"] == "carol"


async def test_health_is_public_and_its_counts_need_a_key(service) -> None:
    async with client(service, None) as anonymous:
        bare = await anonymous.get("/agent/queue/health")
        assert bare.status_code == 200
        assert bare.json()["status"] == "healthy" and "stats" not in bare.json()
        anonymous.headers["Authorization"] = "Bearer aq_not-a-real-key"
        assert (await anonymous.get("/agent/queue/health")).status_code == 401
    async with client(service, "root") as root:
        stats = (await root.get("/agent/queue/health")).json()["stats"]
        assert set(stats) == {"waiting", "active", "completed", "failed"}
    async with client(service, "carol") as carol:  # a tenant: its own jobs' counts
        own = (await carol.get("/agent/queue/stats")).json()["stats"]
        stats = (await carol.get("/agent/queue/health")).json()["stats"]
        assert stats["completed"] == own["completed"]


async def test_wrong_keys_from_one_address_are_throttled(service) -> None:
    proc: AgentqueueProcess = service["proc"]
    # Another loopback source address: its failures do not count against the other tests'.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=proc.base_url, transport=transport) as guesser:
        codes = []
        for i in range(31):  # the default: 30 failures per minute and address
            answer = await guesser.get("/v1/jobs", headers={"Authorization": f"Bearer aq_{i}"})
            codes.append(answer.status_code)
        assert codes == [401] * 30 + [429]
        assert int(answer.headers["retry-after"]) >= 1
        # Blocked: a valid key from that address is not even checked.
        valid = {"Authorization": f"Bearer {service['keys']['alice']}"}
        assert (await guesser.get("/v1/jobs", headers=valid)).status_code == 429
        assert (await guesser.get("/agent/queue/health")).status_code == 200  # no credentials
    async with client(service, "alice") as alice:  # 127.0.0.1 is another address
        assert (await alice.get("/v1/jobs")).status_code == 200
