"""The tool abstraction and the registry the agent runs tools through.

A tool reports a problem the model can act on (bad input, division by zero, nothing found) by
raising ``ToolError``; the registry turns that into an error string for the model instead of
failing the job. Any other exception is a bug and propagates.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agentqueue import tracing
from agentqueue.ai.types import ToolSpec

ToolFunc = Callable[[dict[str, Any]], "str | Awaitable[str]"]

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


class ToolError(Exception):
    """A failure the model should be told about (the message is shown to it verbatim)."""


@dataclass(frozen=True)
class Tool:
    """A named function the model may call, described by a JSON schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: ToolFunc

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    async def run(self, args: dict[str, Any]) -> str:
        """Validate ``args`` against the schema's basics, then call the function."""
        _check_arguments(self.parameters, args)
        result = self.func(args)
        if inspect.isawaitable(result):
            result = await result
        return str(result)


@dataclass(frozen=True)
class ToolResult:
    """What running a tool produced: an output, or an error message for the model."""

    output: str | None = None
    error: str | None = None

    def as_message_content(self) -> str:
        return f"Error: {self.error}" if self.error is not None else self.output or ""


class ToolRegistry:
    """The tools one agent run may use, looked up by name."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def only(self, names: list[str]) -> ToolRegistry:
        """The subset an agent is allowed; unknown names are an error, not silently dropped."""
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            known = ", ".join(self._tools)
            raise ValueError(f"unknown tool(s): {', '.join(unknown)}; known: {known}")
        return ToolRegistry([self._tools[n] for n in names])

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    async def call(self, name: str, args: dict[str, Any]) -> ToolResult:
        """Run a tool by name; unknown names and ``ToolError`` become error results."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return ToolResult(
                error=f"unknown tool {name!r}: not available to this agent (available: {known})"
            )
        with tracing.span(f"tool {name}", attributes={"agentqueue.tool.name": name}) as span:
            try:
                return ToolResult(output=await tool.run(args))
            except ToolError as exc:
                if span is not None:
                    span.set_attribute("agentqueue.tool.error", str(exc)[:200])
                return ToolResult(error=str(exc))


def _check_arguments(schema: dict[str, Any], args: dict[str, Any]) -> None:
    """Check required keys and primitive types so tools get the arguments they declare."""
    if not isinstance(args, dict):
        raise ToolError("arguments must be a JSON object")
    properties: dict[str, Any] = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in args:
            raise ToolError(f"missing required argument {key!r}")
    for key, value in args.items():
        prop = properties.get(key)
        if prop is None:
            if schema.get("additionalProperties", True) is False:
                raise ToolError(f"unexpected argument {key!r}")
            continue
        expected = _JSON_TYPES.get(prop.get("type", ""))
        if expected is None:
            continue
        # bool is an int subclass in Python but not a JSON number.
        if not isinstance(value, expected) or (
            isinstance(value, bool) and prop.get("type") != "boolean"
        ):
            raise ToolError(f"argument {key!r} must be of type {prop['type']}")
