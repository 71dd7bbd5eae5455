"""A local HTTP server speaking the OpenAI chat-completions wire protocol, for tests.

The only stand-in the project allows: for a remote paid API. It answers
``POST /v1/chat/completions`` with whatever its ``reply`` callable returns (or with replies
scripted in order by ``script()``) and records every request (path, headers and JSON body) so
tests can check what the provider actually sent. A gate lets a test hold requests open to catch
a job mid-call.

A request with ``"stream": true`` is answered with server-sent events built from the same
completion body: content in several deltas, each tool call's arguments split across chunks, a
final usage chunk when ``stream_options.include_usage`` asks for one, then ``data: [DONE]``.
``POST /v1/embeddings`` is answered by ``embed_reply`` (default: deterministic vectors, listed
in reverse order with their ``index``, as base64 when the client asks for it).

``FakeAPIServer`` is the protocol-neutral part, shared with ``fake_anthropic``.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

ROUTE = "/v1/chat/completions"
EMBEDDINGS_ROUTE = "/v1/embeddings"


@dataclass
class RawStream:
    """Answer with exactly these server-sent events: (event name or None, data). Data that is
    not a string is sent as JSON."""

    events: list[tuple[str | None, Any]]


# A reply is the response body, (HTTP status, body) to answer with an error, (status, body,
# headers) to add headers (a 429's Retry-After), or a RawStream.
ReplyValue = (dict[str, Any] | tuple[int, dict[str, Any]]
              | tuple[int, dict[str, Any], dict[str, str]] | RawStream)
Reply = Callable[[dict[str, Any]], ReplyValue]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


def split_text(text: str, pieces: int = 3) -> list[str]:
    """``text`` in pieces as a model would stream it: word by word, else in ``pieces`` parts."""
    words = re.findall(r"\S+\s*|\s+", text)
    if len(words) > 1:
        return words
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


class FakeAPIServer:
    """A threaded local HTTP server that records requests and answers them from ``reply``.

    Subclasses route requests (``_respond``). A streamed answer can pause part-way: set
    ``pause`` to an Event and the server, after sending event number ``pause_after`` (counting
    from 0), waits on it (at most ``pause_timeout`` seconds) before sending the rest, and
    appends to ``pause_outcomes`` whether the Event was set in time. A client that hands out
    streamed text only once the stream ends can never set it from its text callback, so the
    outcome is False instead of a deadlock.
    """

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[RecordedRequest] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self.pause: threading.Event | None = None
        self.pause_after = 0
        self.pause_timeout = 10.0
        self.pause_outcomes: list[bool] = []
        # A streamed answer's pace: seconds between its events (a model's token rate), and
        # when each event went out (time.time()), for benches that time what follows.
        self.pace = 0.0
        self.sent_at: list[float] = []
        self._lock = threading.Lock()
        self._scripted: deque[ReplyValue] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

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
        return 500, self.error_body("no scripted reply left")

    def error_body(self, message: str) -> dict[str, Any]:
        return {"error": {"message": message}}

    def _respond(self, handler: _Handler, path: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def _handler_class(self) -> type[_Handler]:
        class Handler(_Handler):
            fake = self

        return Handler

    def _receive(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = json.loads(handler.rfile.read(length) or b"{}")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(handler.path, headers, body))
        self.arrived.set()
        self.gate.wait(timeout=120)
        self._respond(handler, handler.path, body)

    @contextmanager
    def running(self) -> Iterator[Self]:
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
            if self.pause is not None:
                self.pause.set()
            self._server.shutdown()
            self._server.server_close()
            thread.join()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAPIServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.fake._receive(self)

    def send_json(self, status: int, payload: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker that asked was killed: nobody to answer

    def send_events(self, events: Iterable[tuple[str | None, Any]]) -> None:
        """Server-sent events, each written (unbuffered) as soon as it is produced. The body
        ends when the connection closes (HTTP/1.0), so no length is needed."""
        fake = self.fake
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for number, (name, data) in enumerate(events):
                text = data if isinstance(data, str) else json.dumps(data)
                prefix = f"event: {name}\n" if name else ""
                self.wfile.write(f"{prefix}data: {text}\n\n".encode())
                self.wfile.flush()
                fake.sent_at.append(time.time())
                if fake.pace:
                    time.sleep(fake.pace)  # the model's pace (this server's own thread)
                pause = fake.pause
                if number == fake.pause_after and pause is not None:
                    fake.pause_outcomes.append(pause.wait(timeout=fake.pause_timeout))
        except (BrokenPipeError, ConnectionResetError):
            pass


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


def last_user_content(request: dict[str, Any]) -> Any:
    """The content of a request's last user message ("" when it has none)."""
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    return users[-1]["content"] if users else ""


def echo_last_user_message(request: dict[str, Any]) -> dict[str, Any]:
    return text_completion(f"echo: {last_user_content(request)}")


def completion_chunks(body: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """A chat.completion body as the chat.completion.chunk objects a stream delivers."""
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": body["id"],
            "object": "chat.completion.chunk",
            "created": body["created"],
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in split_text(message.get("content") or "")]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": function["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in split_text(function["arguments"], pieces=3)
        ]
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append(
            {
                "id": body["id"],
                "object": "chat.completion.chunk",
                "created": body["created"],
                "model": body["model"],
                "choices": [],
                "usage": body.get("usage"),
            }
        )
    return chunks


def fake_vector(text: str, dimensions: int = 4) -> list[float]:
    """A deterministic vector for ``text`` (its length, then its first characters' codes);
    every value is exact in float32, so it survives base64 encoding unchanged."""
    codes = [float(ord(c)) for c in text[: dimensions - 1]]
    return [float(len(text)), *codes, *[0.0] * (dimensions - 1 - len(codes))]


def fake_embeddings(request: dict[str, Any]) -> dict[str, Any]:
    """An embeddings response: one ``fake_vector`` per input, listed in reverse order (each
    with its ``index``, as the API allows), one prompt token per word."""
    texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
    data = [
        {"object": "embedding", "index": i, "embedding": fake_vector(text)}
        for i, text in enumerate(texts)
    ]
    tokens = sum(len(str(text).split()) for text in texts)
    return {
        "object": "list",
        "data": list(reversed(data)),
        "model": request["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _parts(reply: ReplyValue) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of a reply that is not a RawStream."""
    if isinstance(reply, tuple):
        return (reply[0], reply[1], reply[2]) if len(reply) == 3 else (reply[0], reply[1], {})
    assert isinstance(reply, dict)
    return 200, reply, {}


def _as_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


class FakeOpenAI(FakeAPIServer):
    def __init__(
        self,
        reply: Reply = echo_last_user_message,
        embed_reply: Reply = fake_embeddings,
    ) -> None:
        super().__init__(reply)
        self.embed_reply = embed_reply

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _respond(self, handler: _Handler, path: str, body: dict[str, Any]) -> None:
        if path == EMBEDDINGS_ROUTE:
            reply = self.embed_reply(body)
        elif path == ROUTE:
            reply = self.reply(body)
        else:
            handler.send_json(404, self.error_body(f"no route {path}"))
            return
        if isinstance(reply, RawStream):
            handler.send_events([*reply.events, (None, "[DONE]")])
            return
        status, payload, headers = _parts(reply)
        if status != 200:
            handler.send_json(status, payload, headers)
        elif path == EMBEDDINGS_ROUTE:
            if body.get("encoding_format") == "base64":
                payload = {
                    **payload,
                    "data": [
                        {**item, "embedding": _as_base64(item["embedding"])}
                        for item in payload["data"]
                    ],
                }
            handler.send_json(200, payload)
        elif body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = completion_chunks(payload, include_usage=include_usage)
            handler.send_events([*((None, c) for c in chunks), (None, "[DONE]")])
        else:
            handler.send_json(200, payload)
