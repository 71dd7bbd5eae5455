"""A provider for any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, ...).

It translates between the agent's neutral messages and the wire format, streams answers through
``on_text`` as the chunks arrive, asks for structured output with ``response_format`` when given
a JSON schema, embeds texts with the embeddings API, and turns every SDK failure into a
``ProviderError`` whose message names the endpoint and the cause but never the key.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from agentqueue.ai.providers.base import (
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
from agentqueue.ai.types import (
    ChatMessage,
    EmbeddingResult,
    ProviderReply,
    ToolCall,
    ToolSpec,
    Usage,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
JSON_SCHEMA_NAME = "result"
CLIENT_SHARDS = 8
logger = logging.getLogger("agentqueue.ai")


class OpenAIProvider:
    """Chat with tools, streaming and structured output, and embeddings, over the OpenAI API."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        http_client: str = DEFAULT_HTTP_CLIENT,
        stream: bool = True,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.model = model
        self.embedding_model = embedding_model
        self.base_url = base_url or DEFAULT_BASE_URL
        self.http_client = check_http_client(http_client)
        self.stream = stream
        self._warned_no_stream_usage = False
        self._api_key = api_key
        # One SDK client over aiohttp (see http_client). Over httpx, several, taken in turn:
        # each has its own connection pool, and httpcore's scans all its connections on every
        # request start and end, which one pool with a thousand calls in flight pays for
        # quadratically in CPU.
        shards = CLIENT_SHARDS if self.http_client == "httpx" else 1
        self._clients = [
            AsyncOpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout,
                        max_retries=max_retries,
                        http_client=(openai.DefaultAioHttpClient()
                                     if self.http_client == "aiohttp" else None))
            for _ in range(shards)
        ]
        self._turns = itertools.cycle(self._clients)

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

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
        request: dict[str, Any] = {
            "model": model_name,
            "messages": [to_wire_message(m) for m in messages],
        }
        if tools:
            request["tools"] = [to_wire_tool(t) for t in tools]
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if temperature is not None:
            request["temperature"] = temperature
        if json_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": JSON_SCHEMA_NAME, "schema": json_schema, "strict": False},
            }
        if on_text is None or not self.stream:
            reply = await self._complete(request, model_name)
            if on_text is not None and reply.content:
                await on_text(reply.content)  # OPENAI_STREAM=false: the answer in one piece
            return reply
        return await self._stream(request, model_name, on_text)

    async def _complete(self, request: dict[str, Any], model_name: str) -> ProviderReply:
        try:
            response = await self._client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            raise self._error(exc, model_name) from exc
        if not response.choices:
            raise ProviderError(f"{self._where(model_name)} returned no choices")
        message = response.choices[0].message
        usage = response.usage
        return ProviderReply(
            content=message.content,
            tool_calls=[_from_wire_tool_call(c) for c in message.tool_calls or []],
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
            model=response.model or model_name,
        )

    async def _stream(
        self, request: dict[str, Any], model_name: str, on_text: TextCallback
    ) -> ProviderReply:
        """Stream the answer: each content delta goes to ``on_text`` the moment it is read."""
        try:
            stream = await self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
        except openai.OpenAIError as exc:
            raise self._error(exc, model_name) from exc
        text: list[str] = []
        calls: dict[int, _PartialToolCall] = {}
        usage = Usage()
        reply_model = ""
        saw_choice = saw_usage = False
        try:
            while True:
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except openai.OpenAIError as exc:
                    raise self._error(exc, model_name) from exc
                except Exception as exc:  # the transport broke mid-stream (connection reset)
                    raise self._stream_broke(exc, model_name) from exc
                reply_model = chunk.model or reply_model
                if chunk.usage is not None:
                    saw_usage = True
                    usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens or 0,
                        output_tokens=chunk.usage.completion_tokens or 0,
                    )
                if not chunk.choices:
                    continue
                saw_choice = True
                delta = chunk.choices[0].delta
                for fragment in delta.tool_calls or []:
                    partial = calls.setdefault(fragment.index, _PartialToolCall())
                    partial.add(fragment)
                if delta.content:
                    text.append(delta.content)
                    await on_text(delta.content)
        finally:
            await stream.close()
        if not saw_choice:
            raise ProviderError(f"{self._where(model_name)} returned no choices")
        if not saw_usage and not self._warned_no_stream_usage:
            # Servers that ignore stream_options.include_usage (llama-cpp-python) send none.
            self._warned_no_stream_usage = True
            logger.warning("%s sent no token usage with its streamed answer: streamed calls "
                           "count 0 tokens; set OPENAI_STREAM=false to count them",
                           self._where(model_name))
        return ProviderReply(
            content="".join(text) if text else None,
            tool_calls=[calls[index].to_tool_call(index) for index in sorted(calls)],
            usage=usage,
            model=reply_model or model_name,
        )

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        model_name = model or self.embedding_model
        if not texts:
            return EmbeddingResult(vectors=[], model=model_name)
        try:
            response = await self._client.embeddings.create(model=model_name, input=texts)
        except openai.OpenAIError as exc:
            raise self._error(exc, model_name) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(texts))):
            raise ProviderError(
                f"{self._where(model_name)} returned {len(data)} embeddings for {len(texts)} texts"
            )
        usage = response.usage
        return EmbeddingResult(
            vectors=[[float(x) for x in item.embedding] for item in data],
            model=response.model or model_name,
            usage=Usage(input_tokens=usage.prompt_tokens if usage else 0),
        )

    @property
    def _client(self) -> AsyncOpenAI:
        return next(self._turns)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()

    def _where(self, model_name: str | None = None) -> str:
        return f"OpenAI-compatible API at {self.base_url} (model {model_name or self.model})"

    def _error(self, exc: openai.OpenAIError, model_name: str) -> ProviderError:
        """A ProviderError that explains ``exc`` without ever quoting the API key."""
        refused = refused_not_timed_out(exc) if isinstance(exc, openai.APITimeoutError) else None
        if refused is not None:
            message, retryable, status = f"could not be reached: {refused}", True, None
        elif isinstance(exc, openai.APITimeoutError):
            message, retryable, status = "timed out", True, None
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {cause}" if cause else ""
            message, retryable, status = f"could not be reached{detail}", True, None
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            message = f"answered HTTP {status}: {_detail(exc)}"
        elif isinstance(exc, openai.APIError):  # an error event in the middle of a stream
            message, retryable, status = f"reported an error: {exc.message}", True, None
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
class _PartialToolCall:
    """A tool call assembled from streamed fragments (the id and name come first, then the
    arguments in pieces)."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def add(self, fragment: Any) -> None:
        if fragment.id and not self.id:
            self.id = fragment.id
        function = fragment.function
        if function is None:
            return
        if function.name and not self.name:
            self.name = function.name
        if function.arguments:
            self.arguments.append(function.arguments)

    def to_tool_call(self, index: int) -> ToolCall:
        call_id = self.id or f"call_{index}"
        if not self.name:
            return ToolCall(id=call_id, name="unknown", arguments_error="the tool call had no name")
        return tool_call_from_json(call_id, self.name, "".join(self.arguments))


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return json.dumps(body)
    return str(body) if body else exc.message


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


def tool_call_from_json(call_id: str, name: str, raw: str) -> ToolCall:
    """A ToolCall from arguments as JSON text; bad JSON becomes ``arguments_error``."""
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        error = f"arguments are not valid JSON: {exc}"
        return ToolCall(id=call_id, name=name, arguments_error=error)
    if not isinstance(arguments, dict):
        return ToolCall(id=call_id, name=name, arguments_error="arguments must be a JSON object")
    return ToolCall(id=call_id, name=name, arguments=arguments)


def _from_wire_tool_call(call: Any) -> ToolCall:
    function = getattr(call, "function", None)
    if function is None:  # a non-function ("custom") tool call: we never offer those
        return ToolCall(
            id=call.id,
            name=str(getattr(call, "type", "unknown")),
            arguments_error="only function tools are supported",
        )
    return tool_call_from_json(call.id, function.name, function.arguments or "{}")
