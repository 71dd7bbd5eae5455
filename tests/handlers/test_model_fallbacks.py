"""Model fallbacks end to end over HTTP: the API (and its worker) in this process, a real Redis,
and two local stand-ins for the paid APIs (OpenAI's and Anthropic's wire protocols), one down
the way a provider goes down, the other answering. The job's result names the model that
answered and every model tried; the usage ledger has a line per model."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from agentqueue.ai.agents import AgentConfigError, AgentRegistry
from tests.support.app_api import in_process_api
from tests.support.fake_anthropic import FakeAnthropic, text_message
from tests.support.fake_openai import FakeOpenAI, text_completion
from tests.support.waiting import eventually

GPT, CLAUDE = "gpt-4o-mini", "claude-3-5-haiku-latest"
CHAIN = [{"provider": "openai", "model": GPT}, {"provider": "anthropic", "model": CLAUDE},
         {"provider": "builtin"}]


@pytest.fixture(autouse=True)
def _keys_removed_after(client: redis.Redis) -> None:
    """The `client` fixture deletes the test's keys when it ends."""


@pytest.fixture
def gpt() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    answer = text_message("Claude here.", input_tokens=12, output_tokens=4, model=CLAUDE)
    with FakeAnthropic(lambda _request: answer).running() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def provider_env(gpt: FakeOpenAI | str, claude: FakeAnthropic | None, **more: Any
                 ) -> dict[str, Any]:
    env: dict[str, Any] = {
        "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": GPT, "AI_PROVIDER": "openai",
        "OPENAI_BASE_URL": gpt if isinstance(gpt, str) else gpt.base_url,
        "AI_MAX_RETRIES": "0", "AI_TIMEOUT_SECONDS": "2", "LIMITS_REFRESH_SECONDS": "0.05",
        **more}
    if claude is not None:
        env |= {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": claude.base_url}
    return env


@asynccontextmanager
async def service(redis_url: str, prefix: str, tmp_path: Path, **env: Any
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with in_process_api(redis_url, prefix, tmp_path, run_worker=True, **env) as (http, svc):
        yield http, svc


async def finished(http: httpx.AsyncClient, job_ref: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = (await http.get(f"/api/jobs/{job_ref}")).json()
        return job if job["status"] in ("completed", "failed") else None

    job = await eventually(probe, timeout=30, what=f"job {job_ref} to finish")
    assert job["status"] == "completed", job
    return job


async def ledger(client: redis.Redis, prefix: str, job_ref: str) -> list[dict[str, Any]]:
    queue, job_id = job_ref.split(":", 1)
    values = await client.hvals(f"agentqueue:{prefix}:{queue}:usage:{job_id}")
    return sorted((json.loads(v) for v in values), key=lambda call: call["at"])


async def submit(http: httpx.AsyncClient, job_type: str, data: dict[str, Any]) -> str:
    created = await http.post("/api/jobs", json={"type": job_type, "data": data})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_a_chat_whose_first_model_answers_503_is_answered_by_the_next(
    redis_url: str, prefix: str, tmp_path: Path, client: redis.Redis, gpt: FakeOpenAI,
    claude: FakeAnthropic,
) -> None:
    gpt.reply = lambda _request: (503, {"error": {"message": "The server is overloaded"}})
    async with service(redis_url, prefix, tmp_path, **provider_env(gpt, claude)) as (http, _):
        ref = await submit(http, "chat", {"message": "Hello?", "models": CHAIN})
        result = (await finished(http, ref))["result"]
        assert result["response"] == "Claude here."
        assert (result["provider"], result["model"]) == ("anthropic", CLAUDE)
        tried = result["modelsTried"]
        assert [(t["provider"], t["model"], t["answered"]) for t in tried] == [
            ("openai", GPT, 0), ("anthropic", CLAUDE, 1)]
        assert "HTTP 503" in tried[0]["error"] and "overloaded" in tried[0]["error"]
        assert tried[1]["error"] is None
        # Tokens are the model's that answered; the failed one cost nothing.
        assert result["usage"]["inputTokens"] == 12 and result["usage"]["calls"] == 1
        calls = await ledger(client, prefix, ref)
        assert [(c["provider"], c["model"], c["error"] is not None) for c in calls] == [
            ("openai", GPT, True), ("anthropic", CLAUDE, False)]
        assert calls[1]["input_tokens"] == 12
        assert gpt.count() == 1 and claude.count() == 1  # the builtin was never needed


async def test_an_agent_whose_models_start_with_a_provider_that_is_down(
    redis_url: str, prefix: str, tmp_path: Path, claude: FakeAnthropic,
) -> None:
    """Connection refused at the first model of the agent definition's list."""
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{
        "id": "resilient", "systemPrompt": "Be brief.", "models": CHAIN[:2]}]))
    down = f"http://127.0.0.1:{closed_port()}/v1"
    env = provider_env(down, claude, AGENTQUEUE_AGENTS_FILE=str(agents))
    async with service(redis_url, prefix, tmp_path, **env) as (http, _):
        ref = await submit(http, "agent-task", {"agent_id": "resilient", "title": "Say hi"})
        result = (await finished(http, ref))["result"]
    assert (result["provider"], result["model"]) == ("anthropic", CLAUDE)
    assert "could not be reached" in result["modelsTried"][0]["error"]
    assert claude.requests[0].body["system"] == "Be brief."


async def test_a_summary_falls_back_from_a_timeout(
    redis_url: str, prefix: str, tmp_path: Path, gpt: FakeOpenAI, claude: FakeAnthropic,
) -> None:
    """`provider` then `fallbacks`, on a text task: the first model never answers in time."""
    gpt.hold()
    async with service(redis_url, prefix, tmp_path,
                       **provider_env(gpt, claude, AI_TIMEOUT_SECONDS="0.5")) as (http, _):
        ref = await submit(http, "summarize", {
            "text": "Long text. Very long.", "provider": "openai",
            "fallbacks": [{"provider": "anthropic"}]})
        result = (await finished(http, ref))["result"]
    assert result["summary"] == "Claude here."
    assert (result["provider"], result["model"]) == ("anthropic", CLAUDE)
    assert "timed out" in result["modelsTried"][0]["error"]


async def test_a_429_longer_than_a_fallback_waits_pauses_the_model_and_moves_on(
    redis_url: str, prefix: str, tmp_path: Path, client: redis.Redis, gpt: FakeOpenAI,
    claude: FakeAnthropic,
) -> None:
    """The 429's pause is shared: the next job skips the paused model without calling it."""
    gpt.reply = lambda _request: (429, {"error": {"message": "Rate limit reached"}},
                                  {"Retry-After": "60"})
    env = provider_env(gpt, claude, MODEL_FALLBACK_MAX_WAIT_SECONDS="1")
    async with service(redis_url, prefix, tmp_path, **env) as (http, _):
        first = await submit(http, "generate-completion", {"message": "hi", "models": CHAIN})
        result = (await finished(http, first))["result"]
        assert result["provider"] == "anthropic"
        assert "HTTP 429" in result["modelsTried"][0]["error"]
        pause = f"agentqueue:{prefix}:rl:model:openai:{GPT}:paused"
        assert await client.pttl(pause) > 1000  # for every worker, as the 429 asked
        second = await submit(http, "generate-completion", {"message": "hi", "models": CHAIN})
        again = (await finished(http, second))["result"]
        assert again["provider"] == "anthropic"
        assert "rate limited" in again["modelsTried"][0]["error"]
        assert gpt.count() == 1  # the paused model was not asked again


async def test_a_model_whose_rate_limit_is_spent_is_skipped_for_the_next(
    redis_url: str, prefix: str, tmp_path: Path, gpt: FakeOpenAI, claude: FakeAnthropic,
) -> None:
    """MODEL_RATE_LIMITS: one request a minute to gpt-4o-mini. The second job would wait most
    of a minute for it: past the fallback's wait, it goes to the next model at once."""
    gpt.reply = lambda _request: text_completion("GPT here.", model=GPT)
    env = provider_env(gpt, claude, MODEL_FALLBACK_MAX_WAIT_SECONDS="1",
                       MODEL_RATE_LIMITS={f"openai/{GPT}": {"rpm": 1}})
    async with service(redis_url, prefix, tmp_path, **env) as (http, _):
        first = await submit(http, "generate-completion", {"message": "hi", "models": CHAIN})
        assert (await finished(http, first))["result"]["provider"] == "openai"
        second = await submit(http, "generate-completion", {"message": "hi", "models": CHAIN})
        result = (await finished(http, second))["result"]
    assert (result["content"], result["provider"]) == ("Claude here.", "anthropic")
    assert "rate limited" in result["modelsTried"][0]["error"]
    assert gpt.count() == 1


async def test_a_429_within_the_wait_is_waited_for_on_the_same_model(
    redis_url: str, prefix: str, tmp_path: Path, gpt: FakeOpenAI, claude: FakeAnthropic,
) -> None:
    gpt.script((429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0.2"}),
               text_completion("GPT again.", model=GPT))
    env = provider_env(gpt, claude, MODEL_FALLBACK_MAX_WAIT_SECONDS="10")
    async with service(redis_url, prefix, tmp_path, **env) as (http, _):
        ref = await submit(http, "generate-completion", {"message": "hi", "models": CHAIN})
        result = (await finished(http, ref))["result"]
    assert (result["content"], result["provider"]) == ("GPT again.", "openai")
    assert "modelsTried" not in result  # nothing failed: one model answered
    assert claude.count() == 0


@pytest.mark.parametrize("data,problem", [
    ({"message": "hi", "models": [{"provider": "anthropic"}]},
     "data: models[0]: provider 'anthropic' is not configured "
     "(set ANTHROPIC_API_KEY)"),
    ({"message": "hi", "provider": "openai", "fallbacks": [{"provider": "builtin"},
                                                           {"provider": "anthropic"}]},
     "data: fallbacks[1]: provider 'anthropic' is not configured"),
    ({"message": "hi", "models": [{"provider": "gemini"}]},
     "data.models[0].provider: Input should be 'openai', 'anthropic' or 'builtin'"),
    ({"message": "hi", "models": []}, "data.models: List should have at least 1 item"),
    ({"message": "hi", "provider": "openai", "models": [{"provider": "openai"}]},
     "data: give `models` alone, or `provider`/`model` with `fallbacks`"),
])
async def test_a_chain_that_cannot_run_is_refused_at_submission(
    redis_url: str, prefix: str, tmp_path: Path, gpt: FakeOpenAI, data: dict[str, Any],
    problem: str,
) -> None:
    async with in_process_api(redis_url, prefix, tmp_path, **provider_env(gpt, None)) as (
            http, _):
        answer = await http.post("/api/jobs", json={"type": "chat", "data": data})
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith(problem), answer.json()


def test_an_agent_naming_an_unconfigured_provider_is_refused_at_load(tmp_path: Path) -> None:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{"id": "a", "models": [{"provider": "openai"},
                                                         {"provider": "anthropic"}]}]))
    with pytest.raises(AgentConfigError,
                       match=r"agent 'a' models\[1\]: .*not configured \(set ANTHROPIC_API_KEY\)"):
        AgentRegistry.load(agents, ["calculator"], ["builtin", "openai"])
    assert AgentRegistry.load(agents, ["calculator"], ["builtin", "openai", "anthropic"]).get("a")


async def test_in_python_an_app_enqueues_a_chain_and_a_worker_falls_back(
    redis_url: str, prefix: str, tmp_path: Path, claude: FakeAnthropic,
) -> None:
    import agentqueue
    from agentqueue.config import Settings
    from agentqueue.services import build_workers

    env = provider_env(f"http://127.0.0.1:{closed_port()}/v1", claude)
    settings = Settings(_env_file=None, REDIS_URL=redis_url, QUEUE_PREFIX=prefix,  # type: ignore[call-arg]
                        AGENTQUEUE_DATA_DIR=str(tmp_path / "data"), **env)
    app = agentqueue.App(settings=settings)
    try:
        with pytest.raises(agentqueue.InvalidJobInput, match="provider 'gemini'|Input should be"):
            await app.enqueue("generate-completion",
                              {"message": "hi", "models": [{"provider": "gemini"}]})
        backend = await app._backend()
        group = build_workers(settings, redis_url, records=backend.records, registry=app.types())
        await group.start()
        try:
            job = await app.enqueue("generate-completion", {"message": "hi", "models": CHAIN})
            result = await job.wait(timeout=60)
        finally:
            await group.stop(5)
    finally:
        await app.close()
    assert (result["content"], result["provider"], result["model"]) == (
        "Claude here.", "anthropic", CLAUDE)
    assert [t["provider"] for t in result["modelsTried"]] == ["openai", "anthropic"]
