"""A local HTTP server speaking the Anthropic messages wire protocol, for tests.

Like ``fake_openai`` (whose ``FakeAPIServer`` it shares): it answers ``POST /v1/messages`` with
whatever its ``reply`` callable returns (or with replies scripted by ``script()``) and records
every request. A request with ``"stream": true`` is answered with the server-sent events the
real API sends, built from the same message body: ``message_start`` (input tokens),
``content_block_start`` / ``content_block_delta`` (``text_delta`` pieces, ``input_json_delta``
pieces of a tool's input) / ``content_block_stop`` per block, a ``ping``, ``message_delta``
(stop reason, output tokens) and ``message_stop``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.fake_openai import (
    FakeAPIServer,
    RawStream,
    RecordedRequest,
    Reply,
    ReplyValue,
    _Handler,
    last_user_content,
    split_text,
)

ROUTE = "/v1/messages"

__all__ = [
    "ROUTE",
    "FakeAnthropic",
    "RawStream",
    "RecordedRequest",
    "Reply",
    "ReplyValue",
    "error",
    "message",
    "message_events",
    "text_block",
    "text_message",
    "tool_use",
]


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use(call_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def message(
    *content: dict[str, Any],
    input_tokens: int = 0,
    output_tokens: int = 0,
    model: str = "claude-stub",
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """A Message response body with these content blocks."""
    uses_tools = any(block["type"] == "tool_use" for block in content)
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason or ("tool_use" if uses_tools else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def text_message(text: str, *, input_tokens: int = 10, output_tokens: int = 5,
                 model: str = "claude-stub") -> dict[str, Any]:
    return message(text_block(text), input_tokens=input_tokens, output_tokens=output_tokens,
                   model=model)


def error(status: int, error_type: str, text: str) -> tuple[int, dict[str, Any]]:
    """An error answer as the API gives it: (HTTP status, error body)."""
    return status, {"type": "error", "error": {"type": error_type, "message": text}}


def echo_last_user_message(request: dict[str, Any]) -> dict[str, Any]:
    content = last_user_content(request)
    if isinstance(content, list):
        content = " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return text_message(f"echo: {content}")


def message_events(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A Message body as the stream of events the API sends for it."""
    usage = body["usage"]
    start = {**body, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
    ]
    for index, block in enumerate(body["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in split_text(block["text"])]
        else:
            opening = {**block, "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in split_text(raw, pieces=3)
            ]
        events.append(
            ("content_block_start",
             {"type": "content_block_start", "index": index, "content_block": opening})
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class FakeAnthropic(FakeAPIServer):
    def __init__(self, reply: Reply = echo_last_user_message) -> None:
        super().__init__(reply)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_body(self, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "api_error", "message": message}}

    def _respond(self, handler: _Handler, path: str, body: dict[str, Any]) -> None:
        if path != ROUTE:
            handler.send_json(404, self.error_body(f"no route {path}"))
            return
        reply = self.reply(body)
        if isinstance(reply, RawStream):
            handler.send_events(reply.events)
            return
        status, payload = reply if isinstance(reply, tuple) else (200, reply)
        if status == 200 and body.get("stream"):
            handler.send_events(message_events(payload))
        else:
            handler.send_json(status, payload)
