"""A pass-through HTTP proxy in front of a real server that keeps the `usage` each answer
carried (plain JSON or the chunks of a server-sent event stream), so a test can compare a job's
recorded tokens with the server's own counts without trusting the code under test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
              "content-encoding"}


@dataclass
class Exchange:
    path: str
    request: dict[str, Any]
    usage: dict[str, Any] | None = None
    streamed: bool = False


@dataclass
class RecordingProxy:
    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)
    url: str = ""

    def usages(self, path_suffix: str) -> list[dict[str, Any]]:
        return [e.usage for e in self.exchanges if e.path.endswith(path_suffix) and e.usage]


def usage_in(body: bytes) -> tuple[dict[str, Any] | None, bool]:
    """The last `usage` object in a JSON answer or an SSE stream, and whether it streamed."""
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("data:"):
        usage = None
        for line in text.splitlines():
            payload = line.removeprefix("data:").strip()
            if line.startswith("data:") and payload not in ("", "[DONE]"):
                usage = json.loads(payload).get("usage") or usage
        return usage, True
    try:
        return json.loads(text).get("usage"), False
    except (ValueError, AttributeError):
        return None, False


@asynccontextmanager
async def recording_proxy(upstream: str) -> AsyncIterator[RecordingProxy]:
    proxy = RecordingProxy(upstream.rstrip("/"))
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            sent = json.loads(body) if body else {}
        except ValueError:
            sent = {}
        exchange = Exchange(request.path, sent)
        async with session.request(request.method, proxy.upstream + request.path_qs,
                                   data=body, headers=headers) as answer:
            reply = web.StreamResponse(status=answer.status, headers={
                k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP})
            await reply.prepare(request)
            seen = bytearray()
            async for chunk in answer.content.iter_any():
                seen += chunk
                await reply.write(chunk)
            await reply.write_eof()
        exchange.usage, exchange.streamed = usage_in(bytes(seen))
        proxy.exchanges.append(exchange)
        return reply

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        await runner.cleanup()
        await session.close()
