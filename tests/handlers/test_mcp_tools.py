"""An agent task using an MCP server's tools, end to end over HTTP: the API and its worker in
this process, a real Redis, the small MCP server of tests/support (over stdio and over
streamable HTTP) and a stand-in OpenAI server that asks for the MCP tools. The result shows the
tool's real answer; a tool the agent is not allowed is neither offered nor run, and the job's
log says it was refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from tests.support.app_api import in_process_api
from tests.support.fake_openai import FakeOpenAI, completion, function_call, text_completion
from tests.support.mcp_server import HttpMcpServer, stdio_server
from tests.support.processes import free_port
from tests.support.waiting import eventually


@pytest.fixture(autouse=True)
def _keys_removed_after(client: redis.Redis) -> None:
    """The `client` fixture deletes the test's keys when it ends."""


@pytest.fixture
def gpt() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as server:
        yield server


@pytest.fixture(params=["stdio", "http"])
def orders(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    if request.param == "stdio":
        yield {"name": "orders", **stdio_server()}
        return
    server = HttpMcpServer().start()
    try:
        yield {"name": "orders", "url": server.url}
    finally:
        server.stop()


def env_for(gpt: FakeOpenAI, tmp_path: Path, servers: list[dict[str, Any]]) -> dict[str, Any]:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{
        "id": "orders-desk", "systemPrompt": "Answer questions about orders.",
        "mcpServers": servers, "tools": ["calculator", "orders__lookup_order"]}]))
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": gpt.base_url,
            "OPENAI_MODEL": "gpt-4o-mini", "AI_PROVIDER": "openai", "AI_MAX_RETRIES": "0",
            "AGENTQUEUE_AGENTS_FILE": str(agents)}


async def run_task(http: httpx.AsyncClient, services: Any, title: str
                   ) -> tuple[dict[str, Any], list[str]]:
    created = await http.post("/api/jobs", json={"type": "agent-task", "data": {
        "agent_id": "orders-desk", "title": title}})
    assert created.status_code == 201, created.text
    ref = created.json()["id"]

    async def done() -> dict[str, Any] | None:
        job = (await http.get(f"/api/jobs/{ref}")).json()
        return job if job["status"] in ("completed", "failed") else None

    job = await eventually(done, timeout=60, what="the agent task to finish")
    assert job["status"] == "completed", job
    queue, job_id = ref.split(":", 1)
    return job["result"], await services.queues[queue].logs(job_id)


async def test_the_model_calls_an_allowed_mcp_tool_and_is_refused_another(
    redis_url: str, prefix: str, tmp_path: Path, gpt: FakeOpenAI, orders: dict[str, Any],
) -> None:
    gpt.script(
        completion(tool_calls=[function_call("c1", "orders__lookup_order",
                                             {"order_id": "A-17"})]),
        completion(tool_calls=[function_call("c2", "orders__wipe_orders", {})]),
        text_completion("Order A-17 has shipped."),
    )
    env = env_for(gpt, tmp_path, [orders])
    async with in_process_api(redis_url, prefix, tmp_path, run_worker=True, **env) as (
            http, services):
        result, logs = await run_task(http, services, "Where is order A-17?")
    assert result["response"] == "Order A-17 has shipped."
    looked_up, wiped = result["toolCalls"]
    assert looked_up["name"] == "orders__lookup_order"
    assert looked_up["output"] == "Order A-17: 3 widgets, shipped 2026-11-30"  # the server's
    assert wiped["name"] == "orders__wipe_orders" and wiped["output"] is None
    assert "not available to this agent" in wiped["error"]
    assert any("refused tool 'orders__wipe_orders'" in line for line in logs), logs
    # The model was offered the allowed MCP tool with the schema the server listed, and not
    # the other one.
    offered = {t["function"]["name"]: t["function"] for t in gpt.requests[0].body["tools"]}
    assert set(offered) == {"calculator", "orders__lookup_order"}
    schema = offered["orders__lookup_order"]["parameters"]
    assert schema["required"] == ["order_id"]
    assert schema["properties"]["order_id"]["type"] == "string"
    # And the tool's answer went back to it.
    tool_messages = [m for m in gpt.requests[1].body["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["content"] == "Order A-17: 3 widgets, shipped 2026-11-30"


async def test_a_server_that_cannot_be_reached_leaves_its_tools_out_and_says_so(
    redis_url: str, prefix: str, tmp_path: Path, gpt: FakeOpenAI,
) -> None:
    gpt.script(text_completion("I cannot look orders up right now."))
    down = {"name": "orders", "url": f"http://127.0.0.1:{free_port()}/mcp", "timeout": 5}
    env = env_for(gpt, tmp_path, [down])
    async with in_process_api(redis_url, prefix, tmp_path, run_worker=True, **env) as (
            http, services):
        result, logs = await run_task(http, services, "Where is order A-17?")
    assert result["response"] == "I cannot look orders up right now."
    assert [t["function"]["name"] for t in gpt.requests[0].body["tools"]] == ["calculator"]
    assert any("MCP server 'orders' is unavailable" in line for line in logs), logs
