"""What an MCP tool call costs a job: a connection per job against one kept per worker.

    python bench/mcp_tools.py [--calls 10] [--transport stdio|http|both]

Runs the small MCP server of tests/support (the official SDK's MCPServer) over stdio and over
streamable HTTP, and prints, per transport: the median time to connect and list its tools (what
a job would pay before its first model call if each job opened its own session, and the stdio
server's process start), the median time of one tool call on an open session, and the median of
`--calls` calls each through the worker's pool (`McpPool`, what agentqueue does), connected once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.mcp_server import HttpMcpServer, stdio_server  # noqa: E402

from agentqueue.ai.tools.base import ToolRegistry  # noqa: E402
from agentqueue.ai.tools.mcp_servers import McpConnection, McpPool, McpServer  # noqa: E402


async def per_job(server: McpServer, calls: int) -> tuple[list[float], list[float]]:
    connects, single = [], []
    for _ in range(calls):
        started = time.perf_counter()
        connection = McpConnection(server)
        tools = ToolRegistry(await connection.tools())
        connects.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = await tools.call(f"{server.name}__add", {"a": 1, "b": 2})
        single.append(time.perf_counter() - started)
        assert result.output == "3", result
        await connection.close()
    return connects, single


async def pooled(server: McpServer, calls: int) -> tuple[float, list[float]]:
    pool = McpPool()
    try:
        started = time.perf_counter()
        first = ToolRegistry(await pool.tools("bench", [server], None))
        connect = time.perf_counter() - started
        await first.call(f"{server.name}__add", {"a": 1, "b": 2})
        each = []
        for _ in range(calls):
            started = time.perf_counter()
            tools = ToolRegistry(await pool.tools("bench", [server], None))
            result = await tools.call(f"{server.name}__add", {"a": 1, "b": 2})
            each.append(time.perf_counter() - started)
            assert result.output == "3", result
        return connect, each
    finally:
        await pool.aclose()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--transport", choices=["stdio", "http", "both"], default="both")
    args = parser.parse_args()
    transports = ["stdio", "http"] if args.transport == "both" else [args.transport]
    for transport in transports:
        http = HttpMcpServer().start() if transport == "http" else None
        try:
            where = {"url": http.url} if http is not None else stdio_server()
            server = McpServer.model_validate({"name": "bench", **where})
            connects, single = await per_job(server, args.calls)
            first, each = await pooled(server, args.calls)
        finally:
            if http is not None:
                http.stop()
        print(f"{transport:5}  connect + list per job: median {ms(statistics.median(connects))}"
              f"   one call on it: median {ms(statistics.median(single))}")
        print(f"{transport:5}  pooled: first connect {ms(first)}, then each job's tools + call:"
              f" median {ms(statistics.median(each))} over {args.calls}")


if __name__ == "__main__":
    asyncio.run(main())
