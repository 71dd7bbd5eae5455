"""Tools from Model Context Protocol servers, through the official `mcp` SDK.

An agent definition names servers (`"mcpServers": [{"name": "orders", "command": "python",
"args": ["orders_server.py"]}, {"name": "search", "url": "http://127.0.0.1:8000/mcp"}]`); each
tool a server lists (`tools/list`, with its JSON schema) is offered to the model as
`<server>__<tool>` (OpenAI and Anthropic allow only `[A-Za-z0-9_-]` in a tool's name, so not a
dot), under the agent's `tools` exactly as the built-in tools are: a list names each tool, or
`<server>__*` for all of one server's; no list means every tool. A call to any other is refused
by the agent loop, as for built-in tools.

Connections are pooled per worker process, one per (agent, server), opened by the first job that
needs it and kept: a stdio server is a process to start (seconds for a Python or Node one) and a
handshake to make, which every job would otherwise pay before its first model call; the session
multiplexes concurrent calls, so jobs share it as they share a provider's HTTP client. A server
that dies is reconnected by the next job that needs it. Every connect and call is bounded by
the server's `timeout`; a server that cannot be reached leaves its tools out of that job (the
job's log says why), and a call that fails or times out returns an error to the model, never
fails the job.

The SDK is imported when the first connection opens: importing it costs a second, which a
worker whose agents name no server (and `agentqueue serve` before answering) never pays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentqueue.ai.tools.base import Tool, ToolError

log = logging.getLogger("agentqueue.mcp")

SEPARATOR = "__"
MAX_TOOL_NAME = 64  # the providers' limit on a function's name
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Report = Callable[[str], Awaitable[None]]


class McpServer(BaseModel):
    """One MCP server of an agent: a command to run (stdio) or a streamable HTTP URL."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # No underscore: `<server>__<tool>` splits back unambiguously.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
    command: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://")
    headers: dict[str, str] | None = None
    timeout: float = Field(30.0, gt=0, le=600, description="seconds for a connect or a call")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give `command` (stdio) or `url` "
                             "(streamable HTTP), not both")
        return self

    def tool_name(self, tool: str) -> str:
        """The name the model sees for this server's `tool`."""
        return f"{self.name}{SEPARATOR}{_UNSAFE.sub('_', tool)}"[:MAX_TOOL_NAME]


def names_a_server(tool: str, servers: list[McpServer]) -> bool:
    """Whether an allowed-tools entry is (or covers) a tool of one of these servers."""
    return any(tool.startswith(s.name + SEPARATOR) for s in servers)


def allows(allowed: list[str] | None, name: str) -> bool:
    """Whether an agent's `tools` list lets it use the MCP tool offered as `name`."""
    if allowed is None:
        return True
    server = name.split(SEPARATOR, 1)[0]
    return name in allowed or f"{server}{SEPARATOR}*" in allowed


class McpConnection:
    """One server's session, owned by a task of its own (the SDK's transports are anyio task
    groups: entered and left in one task), shared by every job of the worker."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[list[Any]] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def tools(self) -> list[Tool]:
        """The server's tools (its listing when this connection opened), connecting if it is
        not; ToolError if it cannot be reached in time."""
        async with self._lock:
            if self._task is None or self._task.done():
                self._stop = asyncio.Event()
                self._ready = asyncio.get_running_loop().create_future()
                self._task = asyncio.create_task(self._own(self._ready),
                                                 name=f"mcp {self.server.name}")
            ready = self._ready
        assert ready is not None
        try:
            listed = await asyncio.wait_for(asyncio.shield(ready), self.server.timeout)
        except TimeoutError:
            if self._task is not None:
                self._task.cancel()  # still connecting: the next job tries again
            raise ToolError(f"MCP server {self.server.name!r} did not answer within "
                            f"{self.server.timeout:g} s") from None
        except Exception as exc:
            raise ToolError(f"MCP server {self.server.name!r} is unavailable: "
                            f"{describe(exc)}") from None
        return [self._tool(item) for item in listed]

    async def _own(self, ready: asyncio.Future[list[Any]]) -> None:
        try:
            async with self._connect() as client:
                listed: list[Any] = []
                cursor = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    listed.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                self._client = client
                ready.set_result(listed)
                await self._stop.wait()
        except Exception as exc:  # the server could not start, or died
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("MCP server %r disconnected: %s", self.server.name, describe(exc))
        finally:
            self._client = None
            if not ready.done():  # cancelled while connecting
                ready.set_exception(ToolError("the connection was closed"))

    def _connect(self) -> Any:
        # Imported here: a worker that never connects never pays for the SDK's import.
        from mcp import Client, StdioServerParameters

        server = self.server
        target: Any
        if server.command is not None:
            target = StdioServerParameters(command=server.command, args=server.args,
                                           env=server.env, cwd=server.cwd)
        elif server.headers:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            assert server.url is not None
            target = streamable_http_client(server.url, http_client=httpx2.AsyncClient(
                headers=server.headers, timeout=server.timeout))
        else:
            target = server.url
        return Client(target, read_timeout_seconds=server.timeout)

    def _tool(self, listed: Any) -> Tool:
        real = str(listed.name)

        async def call(args: dict[str, Any]) -> str:
            return await self.call(real, args)

        schema = listed.input_schema if isinstance(listed.input_schema, dict) else {}
        return Tool(name=self.server.tool_name(real),
                    description=listed.description or f"{real} (MCP server {self.server.name})",
                    parameters=schema or {"type": "object", "properties": {}}, func=call)

    async def call(self, tool: str, args: dict[str, Any]) -> str:
        client = self._client
        name = self.server.name
        if client is None:
            raise ToolError(f"MCP server {name!r} is not connected")
        try:
            result = await asyncio.wait_for(
                client.call_tool(tool, args, read_timeout_seconds=self.server.timeout),
                self.server.timeout + 1)
        except TimeoutError:
            raise self._timed_out(tool) from None
        except Exception as exc:
            from mcp import MCPError
            from mcp.types import REQUEST_TIMEOUT

            if isinstance(exc, MCPError) and exc.code == REQUEST_TIMEOUT:
                raise self._timed_out(tool) from None
            if not isinstance(exc, MCPError):
                # The transport broke (the server died): the next job connects again. An
                # MCPError is the server's answer: its session is still good.
                await self.close()
            raise ToolError(f"MCP server {name!r} failed: {describe(exc)}") from None
        text = result_text(result)
        if result.is_error:
            raise ToolError(text or f"MCP tool {tool!r} failed")
        return text

    def _timed_out(self, tool: str) -> ToolError:
        return ToolError(f"MCP tool {tool!r} of {self.server.name!r} did not answer within "
                         f"{self.server.timeout:g} s")

    async def close(self) -> None:
        task = self._task
        self._stop.set()
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(task, self.server.timeout)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                log.debug("MCP server %r closed with an error", self.server.name, exc_info=True)


def result_text(result: Any) -> str:
    """A tool result's content as text for the model: its text blocks, else its structured
    content as JSON; other blocks (images, audio) are named, not inlined."""
    parts = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        parts.append(block.text if kind == "text" else f"[{kind} content]")
    if not any(parts) and result.structured_content is not None:
        return json.dumps(result.structured_content)
    return "\n".join(parts)


def describe(exc: BaseException) -> str:
    """One line for an SDK failure (an exception group says what its first member does)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class McpPool:
    """The worker's MCP connections, one per (agent, server)."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str], McpConnection] = {}

    async def tools(self, owner: str, servers: list[McpServer], allowed: list[str] | None,
                    report: Report | None = None) -> list[Tool]:
        """The tools of `servers` that `allowed` lets the agent `owner` use; a server that
        cannot be reached is reported (the job's log) and left out."""
        offered: list[Tool] = []
        for server in servers:
            key = (owner, server.name)
            connection = self._connections.get(key)
            if connection is None or connection.server != server:
                connection = self._connections[key] = McpConnection(server)
            try:
                tools = await connection.tools()
            except ToolError as exc:
                log.warning("%s", exc)
                if report is not None:
                    await report(f"{exc}: its tools are not offered")
                continue
            offered += [tool for tool in tools if allows(allowed, tool.name)]
        return offered

    async def aclose(self) -> None:
        for connection in self._connections.values():
            with contextlib.suppress(Exception):
                await connection.close()
        self._connections.clear()
