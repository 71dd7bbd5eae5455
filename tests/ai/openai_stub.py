"""A local HTTP server speaking the OpenAI chat-completions wire protocol, for tests.

It answers ``POST /v1/chat/completions`` with scripted replies in order and records every request
(headers and JSON body) so tests can check what the provider actually sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


@dataclass
class ScriptedReply:
    status: int
    body: dict[str, Any]


@dataclass
class OpenAIStub:
    """Scripted replies in, recorded requests out."""

    replies: list[ScriptedReply] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    base_url: str = ""

    def reply(self, body: dict[str, Any], status: int = 200) -> None:
        self.replies.append(ScriptedReply(status, body))


def completion(
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    model: str = "stub-model",
) -> dict[str, Any]:
    """A chat.completion response body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def function_call(call_id: str, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def _handler(stub: OpenAIStub, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append(RecordedRequest(self.path, headers, body))
                scripted = stub.replies.pop(0) if stub.replies else None
            if self.path != "/v1/chat/completions":
                scripted = ScriptedReply(404, {"error": {"message": f"no route {self.path}"}})
            elif scripted is None:
                scripted = ScriptedReply(500, {"error": {"message": "no scripted reply left"}})
            payload = json.dumps(scripted.body).encode()
            self.send_response(scripted.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

    return Handler


class RunningStub:
    """Start the stub on a free port of 127.0.0.1 in a thread; stop it on exit."""

    def __init__(self) -> None:
        self.stub = OpenAIStub()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.stub, threading.Lock()))
        host, port = self._server.server_address[:2]
        self.stub.base_url = f"http://{host!s}:{port}/v1"
        # A short poll interval only makes shutdown() return sooner; nothing waits on it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> OpenAIStub:
        self._thread.start()  # the socket is already listening, so no wait is needed
        return self.stub

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
