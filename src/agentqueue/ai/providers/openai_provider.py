"""A provider for any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, ...).

It translates between the agent's neutral messages and the wire format, and turns every SDK
failure into a ``ProviderError`` whose message names the endpoint and the cause but never the key.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from openai import AsyncOpenAI

from agentqueue.ai.providers.base import ProviderError
from agentqueue.ai.types import ChatMessage, ProviderReply, ToolCall, ToolSpec, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
_MAX_ERROR_DETAIL = 300


class OpenAIProvider:
    """Chat with tools over the OpenAI chat-completions API."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.model = model
        self.base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    async def chat(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> ProviderReply:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [to_wire_message(m) for m in messages],
        }
        if tools:
            request["tools"] = [to_wire_tool(t) for t in tools]
        try:
            response = await self._client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not response.choices:
            raise ProviderError(f"{self._where()} returned no choices")
        message = response.choices[0].message
        usage = response.usage
        return ProviderReply(
            content=message.content,
            tool_calls=[_from_wire_tool_call(c) for c in message.tool_calls or []],
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
            model=response.model or self.model,
        )

    async def aclose(self) -> None:
        await self._client.close()

    def _where(self) -> str:
        return f"OpenAI-compatible API at {self.base_url} (model {self.model})"

    def _error(self, exc: openai.OpenAIError) -> ProviderError:
        """A ProviderError that explains ``exc`` without ever quoting the API key."""
        if isinstance(exc, openai.APITimeoutError):
            message, retryable, status = "timed out", True, None
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {cause}" if cause else ""
            message, retryable, status = f"could not be reached{detail}", True, None
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            message = f"answered HTTP {status}: {_detail(exc)}"
        else:
            message, retryable, status = f"failed: {exc}", True, None
        text = _truncate(f"{self._where()} {message}")
        return ProviderError(self._redact(text), retryable=retryable, status_code=status)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]")


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return json.dumps(body)
    return str(body) if body else exc.message


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_DETAIL else text[: _MAX_ERROR_DETAIL - 3] + "..."


def to_wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def to_wire_message(message: ChatMessage) -> dict[str, Any]:
    """A neutral message as the chat-completions API expects it."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return wire


def _from_wire_tool_call(call: Any) -> ToolCall:
    function = getattr(call, "function", None)
    if function is None:  # a non-function ("custom") tool call: we never offer those
        return ToolCall(
            id=call.id,
            name=str(getattr(call, "type", "unknown")),
            arguments_error="only function tools are supported",
        )
    raw = function.arguments or "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError as exc:
        return ToolCall(
            id=call.id, name=function.name, arguments_error=f"arguments are not valid JSON: {exc}"
        )
    if not isinstance(arguments, dict):
        return ToolCall(
            id=call.id, name=function.name, arguments_error="arguments must be a JSON object"
        )
    return ToolCall(id=call.id, name=function.name, arguments=arguments)
