"""A provider for Anthropic's messages API.

It translates the agent's neutral messages into the messages API's shape (system text in its own
parameter, tool calls and results as ``tool_use`` / ``tool_result`` blocks, alternating turns),
streams answers through ``on_text`` as the events arrive, gets structured output by forcing a
tool whose input schema is the requested JSON schema, and turns every SDK failure into a
``ProviderError`` whose message names the endpoint and the cause but never the key.
Anthropic has no embeddings API: ``embed`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextBlock,
    TextDelta,
    ToolUseBlock,
)

from agentqueue.ai.providers.base import (
    CapabilityUnavailable,
    ProviderError,
    TextCallback,
    retry_after,
    safe_error_text,
)
from agentqueue.ai.providers.http_client import (
    DEFAULT_HTTP_CLIENT,
    check_http_client,
    refused_not_timed_out,
)
from agentqueue.ai.providers.openai_provider import tool_call_from_json
from agentqueue.ai.types import (
    ChatMessage,
    EmbeddingResult,
    ProviderReply,
    ToolCall,
    ToolSpec,
    Usage,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-3-5-haiku-latest"
DEFAULT_MAX_TOKENS = 1024  # the messages API requires max_tokens on every request
RESULT_TOOL = "result"  # the tool forced to get an answer that fits a JSON schema
# Error types (in an error body or a mid-stream error event) worth trying again.
_RETRYABLE_ERROR_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


class AnthropicProvider:
    """Chat with tools, streaming and structured output over the Anthropic messages API."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        http_client: str = DEFAULT_HTTP_CLIENT,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.model = model
        self.base_url = base_url or DEFAULT_BASE_URL
        self.max_tokens = max_tokens
        self.http_client = check_http_client(http_client)
        self._api_key = api_key
        # One client per provider, shared by every job of the worker (see http_client).
        self._client = AsyncAnthropic(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries,
            http_client=(anthropic.DefaultAioHttpClient()
                         if self.http_client == "aiohttp" else None),
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self.model!r}, base_url={self.base_url!r})"

    async def chat(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
    ) -> ProviderReply:
        model_name = model or self.model
        system, wire_messages = to_wire_messages(messages)
        request: dict[str, Any] = {
            "model": model_name,
            "max_tokens": max_tokens if max_tokens is not None else self.max_tokens,
            "messages": wire_messages,
        }
        if system:
            request["system"] = system
        if temperature is not None:
            # Sent as an extra body field: recent SDKs no longer take it as an argument.
            request["extra_body"] = {"temperature": temperature}
        wire_tools = [to_wire_tool(t) for t in tools]
        if json_schema is not None:
            if any(t.name == RESULT_TOOL for t in tools):
                raise ProviderError(
                    f"a tool named {RESULT_TOOL!r} cannot be offered together with json_schema",
                    retryable=False,
                )
            wire_tools.append(
                {
                    "name": RESULT_TOOL,
                    "description": "Give the final answer, as input matching this schema.",
                    "input_schema": json_schema,
                }
            )
            # Without other tools the answer is forced; with them the model must still use a
            # tool, either to call one of them or to give the answer through `result`.
            request["tool_choice"] = (
                {"type": "any"} if tools else {"type": "tool", "name": RESULT_TOOL}
            )
        if wire_tools:
            request["tools"] = wire_tools
        structured = json_schema is not None
        if on_text is None:
            return await self._complete(request, model_name, structured)
        return await self._stream(request, model_name, structured, on_text)

    async def _complete(
        self, request: dict[str, Any], model_name: str, structured: bool
    ) -> ProviderReply:
        try:
            response = await self._client.messages.create(**request)
        except anthropic.AnthropicError as exc:
            raise self._error(exc, model_name) from exc
        text: list[str] = []
        calls: list[ToolCall] = []
        result: str | None = None
        for block in response.content:
            if isinstance(block, TextBlock):
                text.append(block.text)
            elif isinstance(block, ToolUseBlock):
                if structured and block.name == RESULT_TOOL:
                    result = json.dumps(block.input)
                elif isinstance(block.input, dict):
                    calls.append(ToolCall(id=block.id, name=block.name, arguments=block.input))
                else:
                    calls.append(
                        ToolCall(
                            id=block.id,
                            name=block.name,
                            arguments_error="arguments must be a JSON object",
                        )
                    )
        usage = Usage(
            input_tokens=response.usage.input_tokens or 0,
            output_tokens=response.usage.output_tokens or 0,
        )
        return self._reply(
            model_name,
            response.model or model_name,
            usage,
            "".join(text),
            calls,
            result,
            structured,
        )

    async def _stream(
        self, request: dict[str, Any], model_name: str, structured: bool, on_text: TextCallback
    ) -> ProviderReply:
        """Stream the answer: each text delta goes to ``on_text`` the moment it is read.

        With a JSON schema the answer is the ``result`` tool's input, so its JSON pieces are
        what streams.
        """
        try:
            stream = await self._client.messages.create(**request, stream=True)
        except anthropic.AnthropicError as exc:
            raise self._error(exc, model_name) from exc
        blocks: dict[int, _PartialBlock] = {}
        input_tokens = output_tokens = 0
        reply_model = ""
        try:
            while True:
                try:
                    event = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except anthropic.AnthropicError as exc:
                    raise self._error(exc, model_name) from exc
                except Exception as exc:  # the transport broke mid-stream (connection reset)
                    raise self._stream_broke(exc, model_name) from exc
                piece = ""
                if isinstance(event, RawMessageStartEvent):
                    reply_model = event.message.model or reply_model
                    input_tokens = event.message.usage.input_tokens or 0
                    output_tokens = event.message.usage.output_tokens or 0
                elif isinstance(event, RawContentBlockStartEvent):
                    start = event.content_block
                    if isinstance(start, TextBlock):
                        block = blocks[event.index] = _PartialBlock("text")
                        piece = block.add(start.text)
                    elif isinstance(start, ToolUseBlock):
                        blocks[event.index] = _PartialBlock("tool_use", start.id, start.name)
                elif isinstance(event, RawContentBlockDeltaEvent):
                    block = blocks.setdefault(event.index, _PartialBlock("text"))
                    if isinstance(event.delta, TextDelta):
                        piece = block.add(event.delta.text)
                    elif isinstance(event.delta, InputJSONDelta):
                        piece = block.add(event.delta.partial_json)
                elif isinstance(event, RawMessageDeltaEvent):
                    output_tokens = event.usage.output_tokens or output_tokens
                    if event.usage.input_tokens is not None:
                        input_tokens = event.usage.input_tokens
                # With a schema only the result's JSON is the answer; otherwise only text is.
                if piece and block_streams(blocks, event, structured):
                    await on_text(piece)
        finally:
            await stream.close()

        text: list[str] = []
        calls: list[ToolCall] = []
        result: str | None = None
        for index in sorted(blocks):
            block = blocks[index]
            raw = "".join(block.parts)
            if block.kind == "text":
                text.append(raw)
            elif structured and block.name == RESULT_TOOL:
                result = raw or "{}"
            else:
                calls.append(tool_call_from_json(block.id, block.name, raw))
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        return self._reply(
            model_name, reply_model or model_name, usage, "".join(text), calls, result, structured
        )

    def _reply(
        self,
        model_name: str,
        reply_model: str,
        usage: Usage,
        text: str,
        calls: list[ToolCall],
        result: str | None,
        structured: bool,
    ) -> ProviderReply:
        if structured:
            if result is not None:
                _check_json_object(result, self._where(model_name))
                return ProviderReply(content=result, usage=usage, model=reply_model)
            if not calls:
                raise ProviderError(
                    f"{self._where(model_name)} did not give its answer through the "
                    f"{RESULT_TOOL!r} tool"
                )
            # The model asked for other tools first: their results come back, then it answers.
            return ProviderReply(content=None, tool_calls=calls, usage=usage, model=reply_model)
        return ProviderReply(
            content=text or None,
            tool_calls=calls,
            usage=usage,
            model=reply_model,
        )

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        raise CapabilityUnavailable(
            "Anthropic has no embeddings API; set OPENAI_API_KEY to embed with OpenAI"
        )

    async def aclose(self) -> None:
        await self._client.close()

    def _where(self, model_name: str | None = None) -> str:
        return f"Anthropic API at {self.base_url} (model {model_name or self.model})"

    def _error(self, exc: anthropic.AnthropicError, model_name: str) -> ProviderError:
        """A ProviderError that explains ``exc`` without ever quoting the API key."""
        status: int | None
        refused = (refused_not_timed_out(exc) if isinstance(exc, anthropic.APITimeoutError)
                   else None)
        if refused is not None:
            message, retryable, status = f"could not be reached: {refused}", True, None
        elif isinstance(exc, anthropic.APITimeoutError):
            message, retryable, status = "timed out", True, None
        elif isinstance(exc, anthropic.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {cause}" if cause else ""
            message, retryable, status = f"could not be reached{detail}", True, None
        elif isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 400:
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            message = f"answered HTTP {status}: {_detail(exc.body, exc.message)}"
        elif isinstance(exc, anthropic.APIError):
            # An error event in the middle of a stream (the HTTP status was 200): its type
            # says whether trying again can help.
            error_type = _error_type(exc.body)
            retryable, status = error_type in _RETRYABLE_ERROR_TYPES or not error_type, None
            message = f"reported an error mid-stream: {_detail(exc.body, exc.message)}"
        else:
            message, retryable, status = f"failed: {exc}", True, None
        text = safe_error_text(f"{self._where(model_name)} {message}", self._api_key)
        response = getattr(exc, "response", None)
        return ProviderError(text, retryable=retryable, status_code=status,
                             retry_after_s=retry_after(getattr(response, "headers", None)))

    def _stream_broke(self, exc: Exception, model_name: str) -> ProviderError:
        text = f"{self._where(model_name)} stream broke: {type(exc).__name__}: {exc}"
        return ProviderError(safe_error_text(text, self._api_key), retryable=True)


@dataclass
class _PartialBlock:
    """A content block assembled from stream events: text, or a tool_use's JSON input."""

    kind: str  # "text" or "tool_use"
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)

    def add(self, piece: str) -> str:
        if piece:
            self.parts.append(piece)
        return piece


def block_streams(blocks: dict[int, _PartialBlock], event: Any, structured: bool) -> bool:
    """Whether the piece ``event`` added belongs to the answer that ``on_text`` streams."""
    block = blocks.get(getattr(event, "index", -1))
    if block is None:
        return False
    if structured:
        return block.kind == "tool_use" and block.name == RESULT_TOOL
    return block.kind == "text"


def _check_json_object(text: str, where: str) -> None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderError(f"{where} gave a structured answer that is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ProviderError(f"{where} gave a structured answer that is not a JSON object")


def _error_type(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return ""


def _detail(body: object, fallback: str) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("type")
            return f"{kind}: {error['message']}" if kind else str(error["message"])
        return json.dumps(body)
    return str(body) if body else fallback


def to_wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def to_wire_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """The system text, and the other messages as alternating user/assistant turns of blocks.

    Tool results become ``tool_result`` blocks in a user turn and assistant tool calls
    ``tool_use`` blocks; consecutive messages of one role are merged into one turn, as the API
    requires. Empty text is left out (the API rejects empty text blocks).
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            result["content"] = message.content
        if message.is_error:
            result["is_error"] = True
        return [result]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks
