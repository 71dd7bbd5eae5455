"""Approval of tool calls in one process (the HTTP API with its worker): the timeout fails the
job or denies the call as the job asks, the pending call reaches the job's event stream, the
Python job handle approves, and an agent definition's `approvalRequired` parks agent tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import agentqueue
from agentqueue.config import Settings
from tests.support.app_api import in_process_api
from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.waiting import eventually


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        server.script(
            completion(tool_calls=[function_call("c1", "calculator", {"expression": "2+2"})]),
            text_completion("done"),
        )
        yield server


def openai(fake: FakeOpenAI, **more: Any) -> dict[str, Any]:
    return {"AI_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL":
            fake.base_url, "OPENAI_MODEL": "fake-model", "run_worker": True, **more}


async def until(http: httpx.AsyncClient, ref: str, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/api/jobs/{ref}")).json()
        return job if job["status"] in statuses else None

    return await eventually(probe, timeout=30, what=f"{ref} {' or '.join(statuses)}")


@pytest.mark.parametrize("on_timeout", ["deny", "fail"])
async def test_no_decision_in_time_denies_the_call_or_fails_the_job(
    redis_url: str, prefix: str, tmp_path: Path, fake: FakeOpenAI, on_timeout: str
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path, **openai(fake)) as (http, _):
        created = await http.post("/api/jobs", json={"type": "chat", "data": {
            "message": "2+2?", "requireApproval": ["calculator"], "approvalTimeout": 1,
            "onApprovalTimeout": on_timeout}})
        ref = created.json()["id"]
        parked = await until(http, ref, "awaiting_approval", "completed", "failed")
        assert parked["status"] == "awaiting_approval"
        job = await until(http, ref, "completed", "failed")  # the delayed job fires
    if on_timeout == "deny":
        assert job["status"] == "completed", job
        assert job["result"]["toolCalls"][0]["error"] == (
            "nobody approved this call in time; it was not run")
        assert fake.count() == 2
    else:
        assert job["status"] == "failed"
        assert job["error"] == ("nobody approved the call to tool 'calculator' within 1 s "
                                "(onApprovalTimeout: fail)")
        assert fake.count() == 1


async def test_the_pending_call_is_an_event_and_the_python_handle_approves_it(
    redis_url: str, prefix: str, tmp_path: Path, fake: FakeOpenAI, client: Any
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path, **openai(fake)) as (http, _):
        created = await http.post("/agent/queue/chat", json={
            "message": "2+2?", "requireApproval": ["calculator"]})
        job_id = created.json()["jobId"]
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix,
            AGENTQUEUE_DATA_DIR=tmp_path)
        app = agentqueue.App(settings)
        try:
            handle = app.job_handle("agent-queue", job_id)
            await eventually(lambda: _status_is(handle, "awaiting_approval"),
                             what="awaiting_approval")
            # What push subscribers (SSE, WebSocket) and `job.events()` read: BullMQ's events.
            events = await client.xrange(f"{prefix}:agent-queue:events")
            progress = [json.loads(fields["data"]) for _, fields in events
                        if fields.get("event") == "progress" and fields.get("jobId") == job_id]
            assert progress[-1]["awaitingApproval"] is True
            assert progress[-1]["approval"]["tool"] == "calculator"
            pending = await handle.pending_approval()
            assert pending is not None and pending["arguments"] == {"expression": "2+2"}
            assert await handle.approve() is True
            assert await handle.approve() is False  # decided already
            result = await handle.wait(timeout=30)
        finally:
            await app.close()
    assert result["response"] == "done"
    assert result["toolCalls"][0]["output"] == "4"


async def _status_is(handle: Any, status: str) -> bool:
    return bool(await handle.status() == status)


async def test_an_agents_approval_required_tools_park_its_tasks(
    redis_url: str, prefix: str, tmp_path: Path, fake: FakeOpenAI
) -> None:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{"id": "careful", "tools": ["calculator"],
                                   "approvalRequired": ["calculator"]}]))
    async with in_process_api(redis_url, prefix, tmp_path,
                              **openai(fake, AGENTQUEUE_AGENTS_FILE=str(agents))) as (http, _):
        created = await http.post("/api/jobs", json={"type": "agent-task", "data": {
            "agent_id": "careful", "title": "Add two and two"}})
        ref = created.json()["id"]
        parked = await until(http, ref, "awaiting_approval", "completed", "failed")
        assert parked["status"] == "awaiting_approval"
        assert parked["approval"]["tool"] == "calculator"
        denied = await http.post(f"/api/jobs/{ref}/approval", json={"decision": "deny"})
        assert denied.status_code == 200
        job = await until(http, ref, "completed", "failed")
    assert job["status"] == "completed"
    assert job["result"]["toolCalls"][0]["error"] == "a person denied this call; it was not run"


def test_an_agent_may_not_require_approval_of_a_tool_it_lacks(tmp_path: Path) -> None:
    from agentqueue.ai.agents import AgentConfigError, AgentRegistry

    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{"id": "a", "tools": ["calculator"],
                                   "approvalRequired": ["send_email"]}]))
    with pytest.raises(AgentConfigError, match="send_email"):
        AgentRegistry.load(agents, ["calculator"])


async def test_require_approval_naming_a_tool_the_agent_lacks_fails_at_once(
    redis_url: str, prefix: str, tmp_path: Path, fake: FakeOpenAI
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path, **openai(fake)) as (http, _):
        created = await http.post("/api/jobs", json={"type": "chat", "data": {
            "message": "2+2?", "requireApproval": ["calculater"]}})
        job = await until(http, created.json()["id"], "completed", "failed")
    assert job["status"] == "failed" and "calculater" in job["error"]
    assert fake.count() == 0


async def test_the_builtin_provider_parks_for_approval_too(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    # README's example, offline: the builtin provider routes arithmetic to the calculator.
    async with in_process_api(redis_url, prefix, tmp_path, AI_PROVIDER="builtin",
                              run_worker=True) as (http, _):
        created = await http.post("/agent/queue/chat", json={
            "message": "What is 6*7?", "requireApproval": ["calculator"]})
        ref = f"agent-queue:{created.json()['jobId']}"
        parked = await until(http, ref, "awaiting_approval", "completed", "failed")
        assert parked["status"] == "awaiting_approval", parked
        assert parked["approval"]["tool"] == "calculator"
        approved = await http.post(f"/api/jobs/{ref}/approval", json={"decision": "approve"})
        assert approved.status_code == 200
        job = await until(http, ref, "completed", "failed")
    assert job["status"] == "completed" and "42" in job["result"]["response"]
