"""What every AI job handler shares: providers, prices, tools, agents, conversation memory
(bound to each job by `agentqueue.context`), and how a task's errors are classified."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as redis

from agentqueue.ai.agent import AgentStepLimitExceeded
from agentqueue.ai.agents import AgentRegistry
from agentqueue.ai.pricing import PriceTable
from agentqueue.ai.providers.base import ProviderError
from agentqueue.ai.tasks import TaskInputError, TaskOutput
from agentqueue.ai.tools.base import ToolRegistry
from agentqueue.ai.tools.mcp_servers import McpPool
from agentqueue.core.budgets import Budgets
from agentqueue.core.limits import LimitStore
from agentqueue.engine.rate_limit import WindowCounters
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.handlers.metering import JobUsage
from agentqueue.handlers.providers import ProviderPool
from agentqueue.handlers.sessions import SessionStore
from agentqueue.metrics.aggregate import MetricsRecorder
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner

T = TypeVar("T")
log = logging.getLogger("agentqueue.handlers")


@dataclass
class ProviderLimits:
    """What limits provider calls: the rules, the shared counters, the budgets."""

    limits: LimitStore
    counters: WindowCounters
    budgets: Budgets


@dataclass
class AiRuntime:
    providers: ProviderPool
    prices: PriceTable
    tools: ToolRegistry
    agents: AgentRegistry
    client: redis.Redis
    sessions: SessionStore
    conversations: SessionStore
    prefix: str
    max_agent_steps: int = 6
    # Who owns a job (for its conversation memory); without records, no job has an owner.
    records: Records | None = None
    # Provider limits and budgets (handlers.provider_limits); None: calls are not limited.
    provider_limits: ProviderLimits | None = None
    # This process's metrics: provider calls, latency, tokens and cost (None: not counted).
    metrics: MetricsRecorder | None = None
    # How long a model of a fallback chain (not the last) waits for its rate limits or a 429
    # before the chain moves on (MODEL_FALLBACK_MAX_WAIT_SECONDS).
    fallback_max_wait_s: float = 5.0
    # The agents' MCP server connections, kept for every job of this worker.
    mcp: McpPool = field(default_factory=McpPool)

    async def owner_of(self, ctx: JobContext) -> JobOwner | None:
        """The owner the API recorded for this job; None for a job added to Redis directly
        (whose record, made when a worker took it, names `NO_OWNER`).

        Read from the record, never from the job's data, which the client chose.
        """
        if self.records is None:
            return None
        record = await self.records.get(ctx.queue, ctx.id)
        if record is None or record.owner == NO_OWNER:
            return None
        return record.owner

    async def aclose(self) -> None:
        await self.mcp.aclose()
        await self.providers.aclose()


async def guarded(call: Awaitable[T]) -> T:
    """Run a task; failures that retrying cannot fix fail the job at once."""
    try:
        return await call
    except TaskInputError as exc:
        raise PermanentJobError(str(exc)) from exc
    except ProviderError as exc:
        if exc.retryable:
            raise
        raise PermanentJobError(str(exc)) from exc
    except AgentStepLimitExceeded as exc:
        raise PermanentJobError(str(exc)) from exc


def usage_fields(usage: JobUsage) -> dict[str, Any]:
    """Usage as every AI job result carries it (seed 003's `tokenUsed`, `costCents` included),
    and `modelsTried` when a model failed or more than one answered (model fallbacks)."""
    fields: dict[str, Any] = {
        "usage": usage.to_result(),
        "tokenUsed": usage.total_tokens,
        "costCents": usage.cost_cents,
    }
    if usage.fell_back:
        fields["modelsTried"] = [t.model_dump() for t in usage.tried]
    return fields


def task_result(out: TaskOutput, usage: JobUsage) -> dict[str, Any]:
    return {**out.output, "provider": out.provider, "model": out.model, **usage_fields(usage)}
