"""The dashboard's API: who may see and do what. An organization admin sees their
organization's jobs only (another's answer 404, as if absent) and may not act on whole queues;
an admin sees and does everything; anyone else is refused."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt

from agentqueue.records.views import JobOwner
from agentqueue.services import Services
from tests.support.app_api import in_process_api
from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.waiting import eventually

SECRET = "dashboard-test-secret-long-enough-for-hs256"
REMOTE = ("10.1.2.3", 40000)  # not loopback: credentials are needed


def bearer(user: str, role: str, org: str | None = "acme") -> dict[str, str]:
    claims: dict[str, Any] = {"sub": user, "role": role, "exp": int(time.time()) + 600}
    if org:
        claims["org"] = org
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@contextlib.asynccontextmanager
async def dashboard(redis_url: str, prefix: str,
                    tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    async with in_process_api(redis_url, prefix, tmp_path, client=REMOTE,
                              JWT_SECRET=SECRET) as api:
        yield api


async def submit(services: Services, user: str, org: str, **options: Any) -> str:
    record = await services.submitter.submit(queue="agent-queue", name="chat",
                                             data={"message": f"from {user}"},
                                             owner=JobOwner(user_id=user, org_id=org),
                                             **options)
    return record.job_id


async def test_an_org_admin_sees_only_their_organization(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with dashboard(redis_url, prefix, tmp_path) as (http, services):
        ours = await submit(services, "alice", "acme")
        theirs = await submit(services, "bob", "globex")
        lead = bearer("lead", "org_admin")
        listed = (await http.get("/admin/queues/api/jobs", headers=lead)).json()
        assert [(j["id"], j["org"]) for j in listed["jobs"]] == [(ours, "acme")]
        assert (await http.get(f"/admin/queues/api/jobs/agent-queue/{ours}",
                               headers=lead)).status_code == 200
        hidden = await http.get(f"/admin/queues/api/jobs/agent-queue/{theirs}", headers=lead)
        assert hidden.status_code == 404
        assert hidden.json()["message"] == f"Job {theirs} not found"
        # Their organization's record counts, not the queue's.
        overview = (await http.get("/admin/queues/api/overview", headers=lead)).json()
        [queue] = [q for q in overview["queues"] if q["name"] == "agent-queue"]
        assert queue["counts"]["queued"] == 1 and "lastHour" not in queue
        for action in ("pause", "retry-failed"):
            refused = await http.post(f"/admin/queues/api/queues/agent-queue/{action}",
                                      headers=lead)
            assert refused.status_code == 403, action
        assert not await services.queues["agent-queue"].is_paused()
        # Someone else's job cannot be acted on either.
        assert (await http.post(f"/admin/queues/api/jobs/agent-queue/{theirs}/cancel",
                                headers=lead)).status_code == 404


async def test_users_and_strangers_are_refused(redis_url: str, prefix: str,
                                               tmp_path: Path) -> None:
    async with dashboard(redis_url, prefix, tmp_path) as (http, _):
        assert (await http.get("/admin/queues/api/overview")).status_code == 401
        user = await http.get("/admin/queues/api/overview", headers=bearer("eve", "user"))
        assert user.status_code == 403 and "admins" in user.json()["message"]
        # The page itself loads for anyone (it holds no data) and allows only our own assets.
        page = await http.get("/admin/queues")
        assert page.status_code == 200 and "default-src 'self'" in page.headers[
            "content-security-policy"]


async def test_an_admin_promotes_cancels_pauses_and_cleans(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    async with dashboard(redis_url, prefix, tmp_path) as (http, services):
        ops = bearer("ops", "admin")
        later = await submit(services, "alice", "acme", delay_ms=600_000)
        doomed = await submit(services, "bob", "globex")
        queue = services.queues["agent-queue"]
        promoted = await http.post(f"/admin/queues/api/jobs/agent-queue/{later}/promote",
                                   headers=ops)
        assert promoted.status_code == 200
        view = await queue.get(later)
        assert view is not None and view.state in ("waiting", "prioritized")
        again = await http.post(f"/admin/queues/api/jobs/agent-queue/{later}/promote",
                                headers=ops)
        assert again.status_code == 409 and "not delayed" in again.json()["message"]
        assert (await http.post(f"/admin/queues/api/jobs/agent-queue/{doomed}/cancel",
                                headers=ops)).status_code == 200
        record = await services.records.get("agent-queue", doomed)
        assert record is not None and record.status == "cancelled"
        assert (await http.post("/admin/queues/api/queues/agent-queue/pause",
                                headers=ops)).json() == {"success": True, "paused": True}
        assert await queue.is_paused()
        cleaned = await http.post("/admin/queues/api/queues/agent-queue/clean", headers=ops,
                                  json={"state": "waiting", "olderThanS": 0})
        assert cleaned.json() == {"success": True, "removed": 1}
        record = await services.records.get("agent-queue", later)
        assert record is not None and record.status == "cancelled"
        bad = await http.post("/admin/queues/api/queues/agent-queue/clean", headers=ops,
                              json={"state": "everything"})
        assert bad.status_code == 400 and "state" in bad.json()["message"]
        assert (await http.get("/admin/queues/api/jobs?queue=nope",
                               headers=ops)).status_code == 404
        listed = (await http.get("/admin/queues/api/jobs", headers=ops,
                                 params={"q": doomed, "status": "cancelled"})).json()
        assert [j["id"] for j in listed["jobs"]] == [doomed]


async def test_an_admin_approves_or_denies_a_parked_tool_call(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    with FakeOpenAI().running() as fake:
        for _ in range(2):
            fake.script(
                completion(tool_calls=[function_call("c1", "calculator", {"expression": "6*7"})]),
                text_completion("done"))
        async with in_process_api(
                redis_url, prefix, tmp_path, client=REMOTE, JWT_SECRET=SECRET, run_worker=True,
                AI_PROVIDER="openai", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url,
                OPENAI_MODEL="fake-model") as (http, _):
            boss, owner = bearer("root", "admin"), bearer("alice", "user")
            outcomes = {}
            for decision in ("approve", "deny"):
                made = await http.post("/agent/queue/chat", headers=owner, json={
                    "message": "6*7?", "requireApproval": ["calculator"]})
                job_id = made.json()["jobId"]
                page = f"/admin/queues/api/jobs/agent-queue/{job_id}"

                async def parked(page: str = page) -> dict[str, Any] | None:
                    body: dict[str, Any] = (await http.get(page, headers=boss)).json()
                    return body if body["state"] == "awaiting_approval" else None

                shown = await eventually(parked, timeout=30, what="the job to park")
                # The page shows what the model asks to run.
                assert shown["live"]["progress"]["approval"]["tool"] == "calculator"
                assert shown["live"]["progress"]["approval"]["arguments"] == {
                    "expression": "6*7"}
                body = {"decision": decision, "reason": "not today"}
                decided = await http.post(f"{page}/approval", headers=boss, json=body)
                assert decided.status_code == 200, decided.text
                assert decided.json()["call"]["tool"] == "calculator"
                again = await http.post(f"{page}/approval", headers=boss, json=body)
                assert again.status_code == 409

                async def done(page: str = page) -> dict[str, Any] | None:
                    body: dict[str, Any] = (await http.get(page, headers=boss)).json()
                    return body if body["state"] in ("completed", "failed") else None

                outcomes[decision] = (await eventually(done, timeout=30, what="the job"))
            calls = {d: o["live"]["result"]["toolCalls"][0] for d, o in outcomes.items()}
            assert "42" in str(calls["approve"]["output"]) and not calls["approve"]["error"]
            assert not calls["deny"]["output"] and "not today" in calls["deny"]["error"]


async def test_a_nul_in_the_dashboards_query_is_refused_as_everywhere(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    # Found by schemathesis: on PostgreSQL it reached SQL and answered 500.
    async with dashboard(redis_url, prefix, tmp_path) as (http, _):
        refused = await http.get("/admin/queues/api/jobs", params={"owner": "a\x00b"},
                                 headers=bearer("root", "admin"))
        assert refused.status_code == 400, refused.text
        assert refused.json()["message"] == "owner: must not contain NUL characters (\\u0000)"
