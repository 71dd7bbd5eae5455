"""A local HTTP server speaking the OpenAI chat-completions wire protocol, for tests.

The only stand-in the project allows: for a remote paid API. Replies are scripted by the test;
a gate lets a test hold requests open to catch a job mid-call.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A reply is the completion body, or (HTTP status, body) to answer with an error.
Reply = Callable[[dict[str, Any]], "dict[str, Any] | tuple[int, dict[str, Any]]"]


def text_completion(text: str, *, prompt_tokens: int = 10, completion_tokens: int = 5,
                    model: str = "fake-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def echo_last_user_message(request: dict[str, Any]) -> dict[str, Any]:
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    return text_completion(f"echo: {users[-1]['content'] if users else ''}")


class FakeOpenAI:
    def __init__(self, reply: Reply = echo_last_user_message) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self._lock = threading.Lock()
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

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                fake.arrived.set()
                fake.gate.wait(timeout=120)
                if not self.path.endswith("/chat/completions"):
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
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release()
            self._server.shutdown()
            self._server.server_close()
