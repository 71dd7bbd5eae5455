"""A small MCP server for tests, written with the official SDK (`mcp`'s MCPServer, once FastMCP).

    python -m tests.support.mcp_server stdio          # over its stdin/stdout
    python -m tests.support.mcp_server http PORT      # streamable HTTP at http://127.0.0.1:PORT/mcp

Its tools: `lookup_order` (an order's status from a small table), `add` (two integers) and
`wipe_orders` (a tool an agent is not allowed: it only says it would have run), `slow` (sleeps,
for timeouts)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

ORDERS = {"A-17": "3 widgets, shipped 2026-11-30", "B-02": "1 gadget, awaiting payment"}

server = MCPServer("orders")


@server.tool()
def lookup_order(order_id: str) -> str:
    """The status of an order, by its id (such as A-17)."""
    status = ORDERS.get(order_id)
    if status is None:
        raise ToolError(f"no order {order_id!r}")
    return f"Order {order_id}: {status}"


@server.tool()
def add(a: int, b: int) -> int:
    """The sum of two integers."""
    return a + b


@server.tool()
def wipe_orders() -> str:
    """Delete every order (no agent should be allowed this one)."""
    return "WIPED"


@server.tool()
def slow(seconds: float) -> str:
    """Answer after `seconds`."""
    time.sleep(seconds)
    return "done"


def main(argv: list[str]) -> None:
    if argv[:1] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(argv[1]))
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])


# -- for tests: the server as a child process ------------------------------------------------


class HttpMcpServer:
    """This module served over streamable HTTP by a child process on a free port."""

    def __init__(self) -> None:
        from tests.support.processes import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: Any = None

    def start(self) -> HttpMcpServer:
        import socket
        import subprocess

        root = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.mcp_server", "http", str(self.port)],
            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # polled with a deadline: up once it accepts
            if self.process.poll() is not None:
                raise RuntimeError("the MCP test server exited at start")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the MCP test server did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def stdio_server() -> dict[str, Any]:
    """An agent definition's `mcpServers` entry running this module over stdio."""
    root = Path(__file__).resolve().parents[2]
    return {"command": sys.executable, "args": ["-m", "tests.support.mcp_server", "stdio"],
            "cwd": str(root)}
