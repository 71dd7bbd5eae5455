"""MCP tools through the official SDK against a real MCP server the test starts (written with the
SDK's MCPServer: tests/support/mcp_server.py), over stdio and over streamable HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentqueue.ai.agents import AgentConfigError, AgentRegistry
from agentqueue.ai.tools.base import ToolRegistry
from agentqueue.ai.tools.mcp_servers import McpPool, McpServer
from tests.support.mcp_server import HttpMcpServer, stdio_server
from tests.support.processes import free_port


@pytest.fixture
def http_server() -> Iterator[HttpMcpServer]:
    server = HttpMcpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pool() -> AsyncIterator[McpPool]:
    pool = McpPool()
    yield pool
    await pool.aclose()


def definition(transport: str, http_server: HttpMcpServer | None, **more: Any) -> McpServer:
    where = stdio_server() if transport == "stdio" else {"url": http_server.url}  # type: ignore[union-attr]
    return McpServer.model_validate({"name": "orders", **where, **more})


@pytest.fixture(params=["stdio", "http"])
def orders(request: pytest.FixtureRequest) -> Iterator[McpServer]:
    if request.param == "stdio":
        yield definition("stdio", None)
        return
    server = HttpMcpServer().start()
    try:
        yield definition("http", server)
    finally:
        server.stop()


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


async def test_a_servers_tools_are_offered_with_its_schemas_and_answer_for_real(
    pool: McpPool, orders: McpServer,
) -> None:
    tools = ToolRegistry(await pool.tools("agent", [orders], None))
    assert tools.names() == ["orders__lookup_order", "orders__add", "orders__wipe_orders",
                             "orders__slow"]
    spec = next(s for s in tools.specs() if s.name == "orders__lookup_order")
    assert spec.description == "The status of an order, by its id (such as A-17)."
    assert spec.parameters["properties"]["order_id"]["type"] == "string"
    assert spec.parameters["required"] == ["order_id"]
    found = await tools.call("orders__lookup_order", {"order_id": "A-17"})
    assert found.output == "Order A-17: 3 widgets, shipped 2026-11-30"
    assert (await tools.call("orders__add", {"a": 40, "b": 2})).output == "42"
    # The tool's own error goes back to the model as an error, with its words.
    missing = await tools.call("orders__lookup_order", {"order_id": "Z-9"})
    assert missing.output is None and "no order 'Z-9'" in (missing.error or "")


async def test_only_the_allowed_tools_are_offered(pool: McpPool, orders: McpServer) -> None:
    tools = await pool.tools("agent", [orders], ["calculator", "orders__lookup_order"])
    assert [t.name for t in tools] == ["orders__lookup_order"]
    every = await pool.tools("agent", [orders], ["orders__*"])
    assert len(every) == 4


async def test_one_connection_serves_every_job_of_the_worker(
    pool: McpPool, http_server: HttpMcpServer,
) -> None:
    server = definition("http", http_server)
    first = await pool.tools("agent", [server], None)
    again = await pool.tools("agent", [server], None)
    assert [t.name for t in first] == [t.name for t in again]
    assert len(pool._connections) == 1


async def test_a_call_past_the_timeout_is_an_error_for_the_model(
    pool: McpPool, http_server: HttpMcpServer,
) -> None:
    server = definition("http", http_server, timeout=1)
    tools = ToolRegistry(await pool.tools("agent", [server], None))
    slow = await tools.call("orders__slow", {"seconds": 5})
    assert "did not answer within 1 s" in (slow.error or "")


async def test_a_server_that_died_gives_the_model_an_error_not_a_crash(
    pool: McpPool, http_server: HttpMcpServer,
) -> None:
    tools = ToolRegistry(await pool.tools("agent", [definition("http", http_server,
                                                               timeout=5)], None))
    http_server.stop()
    dead = await tools.call("orders__lookup_order", {"order_id": "A-17"})
    assert dead.output is None and "orders" in (dead.error or "")


async def test_a_server_that_cannot_be_reached_is_left_out_and_reported(pool: McpPool) -> None:
    report = Report()
    nowhere = McpServer(name="orders", url=f"http://127.0.0.1:{free_port()}/mcp", timeout=5)
    assert await pool.tools("agent", [nowhere], None, report=report) == []
    assert len(report.lines) == 1 and "MCP server 'orders' is unavailable" in report.lines[0]


def test_an_agent_may_allow_its_servers_tools_and_no_others(tmp_path: Path) -> None:
    agents = tmp_path / "agents.json"
    server = {"name": "orders", "url": "http://127.0.0.1:9/mcp"}
    agents.write_text(json.dumps([{"id": "a", "mcpServers": [server],
                                   "tools": ["calculator", "orders__lookup_order", "orders__*"]}]))
    agent = AgentRegistry.load(agents, ["calculator"]).get("a")
    assert agent is not None and agent.mcp_servers[0].url == server["url"]
    agents.write_text(json.dumps([{"id": "a", "mcpServers": [server],
                                   "tools": ["files__read"]}]))
    with pytest.raises(AgentConfigError, match=r"unknown tools \['files__read'\]"):
        AgentRegistry.load(agents, ["calculator"])
    agents.write_text(json.dumps([{"id": "a", "mcpServers": [{"name": "x"}]}]))
    with pytest.raises(AgentConfigError, match="give `command` \\(stdio\\) or `url`"):
        AgentRegistry.load(agents, ["calculator"])


async def test_a_url_server_with_headers_is_reached_through_a_client_of_its_own(
    pool: McpPool, http_server: HttpMcpServer,
) -> None:
    server = definition("http", http_server, headers={"Authorization": "Bearer t0ken"})
    tools = ToolRegistry(await pool.tools("agent", [server], ["orders__add"]))
    assert (await tools.call("orders__add", {"a": 2, "b": 3})).output == "5"
