"""Human approval of tool calls, end to end over HTTP: real `agentqueue api` and `agentqueue
worker` processes, a stand-in OpenAI server that asks for the calculator, which the chat job
marks as needing approval. The job parks (awaiting_approval, the pending call in every API's
view and in its event stream), survives a SIGKILLed worker and a restarted API, and resumes on
its owner's decision: the approved tool runs, or the model is told of the denial. Nobody but
its owner (or an admin) may see or decide it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.processes import CLI, agentqueue
from tests.support.service import as_caller, process_env
from tests.support.waiting import eventually

QUEUE = "agent-queue"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.fixture
async def env(redis_url: str, tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[dict[str, str]]:
    async with process_env(redis_url, tmp_path / "data", AI_PROVIDER="openai",
                           OPENAI_API_KEY="sk-test-not-a-real-key",
                           OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model") as env:
        yield env


def ask_for_the_calculator(fake: FakeOpenAI, answer: str) -> None:
    fake.script(
        completion(tool_calls=[function_call("call_9", "calculator", {"expression": "6*7"})],
                   prompt_tokens=10, completion_tokens=5, model="gpt-4o-mini"),
        text_completion(answer, prompt_tokens=30, completion_tokens=4, model="gpt-4o-mini"),
    )


async def until_status(http: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await http.get(f"/agent/queue/job/{job_id}")
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()["job"]
        return job if job["status"] == status else None

    return await eventually(probe, timeout=60, what=f"job {job_id} {status}")


async def test_a_parked_call_survives_restarts_and_runs_once_its_owner_approves(
    env: dict[str, str], fake: FakeOpenAI, tmp_path: Path
) -> None:
    ask_for_the_calculator(fake, "6*7 is 42")
    with agentqueue("api", env, tmp_path / "api-1.log") as api, \
            agentqueue("worker", env, tmp_path / "worker-1.log") as worker:
        await api.wait_healthy()
        async with as_caller(api.base_url, "alice", "acme") as alice:
            created = await alice.post("/agent/queue/chat", json={
                "message": "What is 6*7?", "requireApproval": ["calculator"],
                "approvalTimeout": 3600})
            assert created.status_code == 201, created.text
            job_id = created.json()["jobId"]
            job = await until_status(alice, job_id, "awaiting_approval")
            call = job["approval"]
            assert (call["tool"], call["arguments"], call["callId"]) == (
                "calculator", {"expression": "6*7"}, "call_9")
            assert call["onTimeout"] == "fail" and call["expiresAt"]
            assert fake.count() == 1
        # Parked, the job holds no worker: kill it, and restart the API too.
        worker.signal(signal.SIGKILL)
        worker.wait_exit()
    with agentqueue("api", env, tmp_path / "api-2.log") as api, \
            agentqueue("worker", env, tmp_path / "worker-2.log") as worker:
        await api.wait_healthy()
        await worker.wait_log("Worker on queue 'agent-queue' started")
        async with as_caller(api.base_url, "alice", "acme") as alice, \
                as_caller(api.base_url, "bob", "other-org") as bob:
            ref = f"{QUEUE}:{job_id}"
            seen = (await alice.get(f"/api/jobs/{ref}")).json()
            assert seen["status"] == "awaiting_approval"
            assert seen["approval"]["tool"] == "calculator"
            # Someone else's job is not there for them, to see or to decide.
            assert (await bob.get(f"/api/jobs/{ref}")).status_code == 404
            refused = await bob.post(f"/api/jobs/{ref}/approval", json={"decision": "approve"})
            assert refused.status_code == 404
            bad = await alice.post(f"/api/jobs/{ref}/approval", json={"decision": "maybe"})
            assert bad.status_code == 400 and "decision" in bad.text
            assert fake.count() == 1  # still parked: nothing ran while it waited

            approved = await alice.post(f"/api/jobs/{ref}/approval",
                                        json={"decision": "approve"})
            assert approved.status_code == 200, approved.text
            assert approved.json()["status"] in ("pending", "active", "completed")
            assert approved.json()["approval"] is None
            job = await until_status(alice, job_id, "completed")
            again = await alice.post(f"/api/jobs/{ref}/approval", json={"decision": "approve"})
            assert again.status_code == 409
        result = job["result"]
        assert result["response"] == "6*7 is 42"
        assert result["toolCalls"] == [{"tool": "calculator", "arguments": {"expression": "6*7"},
                                        "output": "42", "error": None}]
        # The resumed run replayed the reply that asked for the tool: two calls in all.
        assert fake.count() == 2
        tool_message = fake.requests[1].body["messages"][-1]
        assert tool_message["role"] == "tool" and tool_message["content"] == "42"
        async with as_caller(api.base_url, "alice", "acme") as alice:
            steps = (await alice.get(f"/api/jobs/{QUEUE}:{job_id}/steps")).json()["steps"]
        assert [s["name"] for s in steps] == ["provider:chat", "tool:calculator"]
        assert steps[1]["approval"]["decision"] == "approve"
        assert steps[1]["approval"]["by"] == "alice"


async def test_a_denied_call_is_told_to_the_model_which_goes_on(
    env: dict[str, str], fake: FakeOpenAI, tmp_path: Path
) -> None:
    ask_for_the_calculator(fake, "I was not allowed to calculate that.")
    with agentqueue("serve", env, tmp_path / "serve.log") as serve:
        await serve.wait_healthy()
        async with as_caller(serve.base_url, "alice", "acme") as alice, \
                as_caller(serve.base_url, "root", "acme", role="admin") as admin:
            chat = await alice.post("/agent/queue/chat", json={
                "message": "What is 6*7?", "requireApproval": ["calculator"]})
            job_id = chat.json()["jobId"]
            await until_status(alice, job_id, "awaiting_approval")
            # An admin denies it with the CLI (remote mode: the service's URL and a token).
            token = admin.headers["Authorization"].removeprefix("Bearer ")
            cli_env = {**os.environ, "AGENTQUEUE_URL": serve.base_url, "AGENTQUEUE_KEY": token}
            denied = await asyncio.to_thread(subprocess.run, [
                CLI, "jobs", "deny", f"{QUEUE}:{job_id}", "--reason", "no maths today"],
                env=cli_env, capture_output=True, text=True, timeout=60)
            assert denied.returncode == 0, denied.stderr
            assert denied.stdout.startswith(f"Denied the call {QUEUE}:{job_id} awaited")
            job = await until_status(alice, job_id, "completed")
    assert job["result"]["response"] == "I was not allowed to calculate that."
    step = job["result"]["toolCalls"][0]
    assert step["output"] is None
    assert step["error"] == "a person denied this call: no maths today; it was not run"
    told = fake.requests[1].body["messages"][-1]
    assert told["role"] == "tool" and "no maths today" in told["content"]
