"""Value types shared by providers, tools and the agent loop.

They are Pydantic models so a job handler can validate incoming conversation history with
``ChatMessage.model_validate(item)`` and store an ``AgentReply`` with ``model_dump()``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """A model's request to run one tool."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # Set by a provider when the model sent arguments that are not a JSON object; the agent
    # reports it back to the model instead of running the tool with guessed arguments.
    arguments_error: str | None = None


class ChatMessage(BaseModel):
    """One message of a conversation, in the provider-neutral shape the agent works with."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant messages only
    tool_call_id: str | None = None  # tool messages only: which call this answers
    name: str | None = None  # tool messages: the tool's name
    is_error: bool = False  # tool messages: the content reports the tool's failure

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> ChatMessage:
        # Checked here so bad conversation history from a client fails validation, not the
        # provider call.
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return self


class Usage(BaseModel):
    """Tokens consumed by one or more provider calls."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class ToolSpec(BaseModel):
    """What a provider is told about a tool: its name, purpose and JSON-schema parameters."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any]


class ProviderReply(BaseModel):
    """One provider turn: either text, or tool calls to run before asking again."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str


class AgentStep(BaseModel):
    """One tool call the agent ran, with its output or the error it produced."""

    tool_call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class AgentReply(BaseModel):
    """The agent's final answer and how it got there."""

    response: str
    provider: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    steps: list[AgentStep] = Field(default_factory=list)


class EmbeddingResult(BaseModel):
    """Vectors for a list of texts, in order."""

    vectors: list[list[float]]
    model: str
    usage: Usage = Field(default_factory=Usage)

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0
