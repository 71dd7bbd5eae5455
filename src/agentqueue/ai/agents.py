"""Agent definitions: a name, a system prompt, a provider and model, and the tools it may use.

Seed 002's tasks name an agent by `agent_id`. Definitions come from a JSON file
(`AGENTQUEUE_AGENTS_FILE`, read by the caller) shaped as a list of objects:

    [{"id": "analyst", "name": "Deal analyst", "systemPrompt": "...",
      "provider": "openai", "model": "gpt-4o-mini", "tools": ["calculator"]}]

`mcpServers` names Model Context Protocol servers whose tools it may use (`<server>__<tool>`
in `tools`, or `<server>__*`; see `ai.tools.mcp_servers`):
`"mcpServers": [{"name": "orders", "command": "python", "args": ["orders.py"]}]`.

`models` lists models to ask in order instead (model fallbacks, `ai.providers.fallback`):
`"models": [{"provider": "openai"}, {"provider": "anthropic"}, {"provider": "builtin"}]`.

The agent `default` always exists: every tool, the default provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agentqueue.ai.providers.fallback import ModelChoice, unconfigured
from agentqueue.ai.tools.mcp_servers import McpServer, names_a_server

DEFAULT_AGENT_ID = "default"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the tools you are given to look facts up and to calculate; "
    "answer only from what they return."
)


class AgentDefinition(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = ""
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, alias="systemPrompt", max_length=20_000)
    provider: str | None = None
    model: str | None = None
    # Model fallbacks: asked in order (wins over provider/model).
    models: list[ModelChoice] | None = Field(None, min_length=1, max_length=10)
    # None: every tool (the MCP servers' too); a list: only these.
    tools: list[str] | None = None
    mcp_servers: list[McpServer] = Field(default_factory=list, alias="mcpServers",
                                         max_length=20)
    max_steps: int | None = Field(None, alias="maxSteps", ge=1, le=50)
    # Tools whose calls a person must approve first (the job parks meanwhile), how long an
    # approval may take (seconds), and what no decision in time means.
    approval_required: list[str] = Field(default_factory=list, alias="approvalRequired")
    approval_timeout: int | None = Field(None, alias="approvalTimeout", ge=1, le=30 * 24 * 3600)
    on_approval_timeout: Literal["fail", "deny"] | None = Field(None, alias="onApprovalTimeout")


class AgentConfigError(ValueError):
    pass


class AgentRegistry:
    def __init__(self, agents: list[AgentDefinition]) -> None:
        self._agents = {DEFAULT_AGENT_ID: AgentDefinition(id=DEFAULT_AGENT_ID, name="Default")}
        for agent in agents:
            self._agents[agent.id] = agent

    @classmethod
    def load(cls, path: Path | None, known_tools: list[str],
             providers: list[str] | None = None) -> AgentRegistry:
        """The agents of `path`; their tools must be among `known_tools` and the providers of
        their `models` among `providers` (when given: those configured)."""
        if path is None:
            return cls([])
        try:
            raw = json.loads(Path(path).read_text())
            agents = TypeAdapter(list[AgentDefinition]).validate_python(raw)
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise AgentConfigError(f"cannot load agents from {path}: {exc}") from exc
        for agent in agents:
            servers = [server.name for server in agent.mcp_servers]
            if len(set(servers)) != len(servers):
                raise AgentConfigError(f"agent {agent.id!r} names an MCP server twice: {servers}")
            offered = set(known_tools if agent.tools is None else agent.tools)
            named = (set(agent.tools or []) - set(known_tools)) | (
                set(agent.approval_required) - offered)
            unknown = sorted(tool for tool in named
                             if not names_a_server(tool, agent.mcp_servers))
            if unknown:
                raise AgentConfigError(
                    f"agent {agent.id!r} names unknown tools {unknown}; known: {known_tools}"
                )
            problem = (unconfigured(agent.models, providers)
                       if agent.models and providers is not None else None)
            if problem is not None:
                raise AgentConfigError(f"agent {agent.id!r} {problem}")
        return cls(agents)

    def get(self, agent_id: str) -> AgentDefinition | None:
        return self._agents.get(agent_id)

    def ids(self) -> list[str]:
        return list(self._agents)
