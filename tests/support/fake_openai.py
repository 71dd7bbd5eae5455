"""A local HTTP server speaking the OpenAI chat-completions wire protocol, for tests.

The only stand-in the project allows: for a remote paid API. It answers
``POST /v1/chat/completions`` with whatever its ``reply`` callable returns (or with replies
scripted in order by ``script()``) and records every request (path, headers and JSON body) so
tests can check what the provider actually sent. A gate lets a test hold requests open to catch
a job mid-call.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTE = "/v1/chat/completions"

# A reply is the completion body, or (HTTP status, body) to answer with an error.
ReplyValue = dict[str, Any] | tuple[int, dict[str, Any]]
Reply = Callable[[dict[str, Any]], ReplyValue]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


def completion(
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    model: str = "stub-model",
) -> dict[str, Any]:
    """A chat.completion response body: a text answer, or tool calls to make."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake",
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


def text_completion(text: str, *, prompt_tokens: int = 10, completion_tokens: int = 5,
                    model: str = "fake-model") -> dict[str, Any]:
    return completion(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      model=model)


def function_call(call_id: str, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def echo_last_user_message(request: dict[str, Any]) -> dict[str, Any]:
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    return text_completion(f"echo: {users[-1]['content'] if users else ''}")


class FakeOpenAI:
    def __init__(self, reply: Reply = echo_last_user_message) -> None:
        self.reply = reply
        self.requests: list[RecordedRequest] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._scripted: deque[ReplyValue] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def hold(self) -> None:
        """Hold every request open until `release()`."""
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *replies: ReplyValue) -> None:
        """Answer the next requests with these replies, in order, after any scripted before.

        Each is a body, or (status, body). From now on ``reply`` takes the scripted replies;
        once they run out, a request gets HTTP 500.
        """
        with self._lock:
            self._scripted.extend(replies)
        self.reply = self._next_scripted

    def _next_scripted(self, _request: dict[str, Any]) -> ReplyValue:
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
        return 500, {"error": {"message": "no scripted reply left"}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append(RecordedRequest(self.path, headers, body))
                fake.arrived.set()
                fake.gate.wait(timeout=120)
                if self.path != ROUTE:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = fake.reply(body)
                status, payload = reply if isinstance(reply, tuple) else (200, reply)
                self._send(status, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker that asked was killed: nobody to answer

        return Handler

    @contextmanager
    def running(self) -> Iterator[FakeOpenAI]:
        # The socket is already listening, so no wait is needed. A short poll interval only
        # makes shutdown() return sooner.
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self.release()
            self._server.shutdown()
            self._server.server_close()
            thread.join()
