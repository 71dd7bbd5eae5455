"""What a job's handler gets: `ctx`, the engine's job context plus what agentqueue offers.

    async def handler(ctx: agentqueue.Context, data: MyInput) -> dict:
        ctx.data, ctx.attempt, await ctx.progress(30), await ctx.log("…")
        owner = await ctx.owner()                  # who submitted it (None: nobody known)
        provider = ctx.ai.provider()               # metered for this job, reused on retry
        stream = ctx.text_stream()                 # the answer, into progress as it arrives
        reply = await provider.chat([...], [], on_text=stream)
        await stream.close()
        usage = await ctx.usage()                  # tokens and cost over all its attempts
        rows = await ctx.step("fetch", fetch, url) # durable: a retry replays its result

A worker group binds its shared resources (settings, providers, tools, agents, memory, the
records) to a subclass (`WorkerResources.context_class`), which it gives `WorkerRuntime`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from agentqueue.ai.agents import AgentDefinition, AgentRegistry
from agentqueue.ai.providers.base import Provider, ProviderError
from agentqueue.ai.providers.fallback import FallbackProvider, ModelChoice, ModelLink
from agentqueue.ai.tools.base import ToolRegistry
from agentqueue.config import Settings
from agentqueue.core.approvals import ApprovalGate
from agentqueue.definition import validation_context
from agentqueue.engine.deltas import DeltaWriter
from agentqueue.engine.steps import RESERVED_PREFIXES, StepLog
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.handlers.ai_runtime import AiRuntime
from agentqueue.handlers.metering import JobMeter, JobUsage, MeteredProvider
from agentqueue.handlers.provider_limits import LimitedProvider
from agentqueue.handlers.sessions import SessionStore
from agentqueue.handlers.streaming import TextProgress
from agentqueue.records.store import Records
from agentqueue.records.views import NO_OWNER, JobOwner

T = TypeVar("T")

# Names in `ctx.state` that worker middleware may fill (and the context otherwise does).
METER, OWNER, STEPS = "meter", "owner", "steps"


class WorkerResources:
    """What the handlers of one worker group share: settings, the AI runtime (providers,
    prices, tools, agents, memory, records), and objects a job type keeps for all its jobs
    (an HTTP client, say), closed with the group."""

    def __init__(self, settings: Settings, runtime: AiRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self._shared: dict[str, Any] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def shared(self, key: str, make: Callable[[], T],
               close: Callable[[T], Awaitable[None]] | None = None) -> T:
        """The object stored under `key`, made (once) by `make` if there is none yet."""
        if key not in self._shared:
            self.provide(key, make(), close)
        value: T = self._shared[key]
        return value

    def provide(self, key: str, value: T,
                close: Callable[[T], Awaitable[None]] | None = None) -> None:
        """Store `value` under `key` (tests give a webhook client of their own this way)."""
        self._shared[key] = value
        if close is not None:
            self._closers.append(lambda: close(value))

    def validation_context(self) -> dict[str, Any]:
        return validation_context(self.settings, self.runtime.agents.ids())

    def context_class(self) -> type[Context]:
        """A `Context` bound to these resources, for `WorkerRuntime(context_class=...)`."""
        return type("WorkerContext", (Context,), {"resources": self})

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers.clear()
        self._shared.clear()
        await self.runtime.aclose()


class JobAi:
    """The AI resources, bound to one job: its providers are metered (tokens and cost go to
    the job's usage, once per call however often the job is retried)."""

    def __init__(self, ctx: JobContext, runtime: AiRuntime) -> None:
        self._ctx = ctx
        self._runtime = runtime
        self._providers: dict[Any, Provider] = {}
        self._fallbacks = 0  # failed models of this attempt, numbered for the ledger

    @property
    def meter(self) -> JobMeter:
        """The job's usage ledger (the metering middleware's, when it runs)."""
        meter = self._ctx.state.get(METER)
        if not isinstance(meter, JobMeter):
            rt = self._runtime
            meter = self._ctx.state[METER] = JobMeter(
                rt.client, prefix=rt.prefix, queue=self._ctx.queue, job_id=self._ctx.id)
        return meter

    @property
    def steps(self) -> StepLog:
        """The job's durable steps (`engine.steps`), as this run reads and writes them."""
        steps = self._ctx.state.get(STEPS)
        if not isinstance(steps, StepLog):
            rt = self._runtime
            steps = self._ctx.state[STEPS] = StepLog(
                rt.client, prefix=rt.prefix, queue=self._ctx.queue, job_id=self._ctx.id,
                attempt=self._ctx.attempt)
        return steps

    @property
    def approval_gate(self) -> ApprovalGate:
        """Where the call this job waits on a person's approval for is kept (`core.approvals`)."""
        rt = self._runtime
        return ApprovalGate(rt.client, prefix=rt.prefix, queue=self._ctx.queue,
                            job_id=self._ctx.id)

    @property
    def records(self) -> Records | None:
        return self._runtime.records

    def provider(self, name: str | None = None, *,
                 models: list[ModelChoice] | None = None) -> Provider:
        """The provider called `name` (None: AI_PROVIDER's), metered for this job; one that is
        not configured fails the job at once.

        Model fallbacks: the job's data `models` (or `provider`/`model` then `fallbacks`), else
        `models` (an agent's, say), make it a chain that asks each model in order."""
        chain = self._chain(name, models)
        key: Any = name if chain is None else tuple(chain)
        if key not in self._providers:
            provider = (self._limited(self._get(name)) if chain is None
                        else self._fallback(chain))
            if provider.name != "builtin" or chain is not None:
                # The builtin one alone has no tokens to pay for twice.
                provider = MeteredProvider(provider, self.meter, self._runtime.prices,
                                           attempt=self._ctx.attempt, steps=self.steps,
                                           metrics=self._runtime.metrics)
            self._providers[key] = provider
        return self._providers[key]

    def _get(self, name: str | None) -> Provider:
        try:
            return self._runtime.providers.get(name)
        except ProviderError as exc:
            raise PermanentJobError(str(exc)) from exc

    def _limited(self, provider: Provider, max_wait_s: float | None = None) -> Provider:
        limits = self._runtime.provider_limits
        if provider.name == "builtin" or limits is None:
            return provider
        # Inside the meter: a replayed reply is not limited.
        return LimitedProvider(provider, limits=limits.limits, counters=limits.counters,
                               budgets=limits.budgets, prices=self._runtime.prices,
                               org_of=self._org, max_wait_s=max_wait_s)

    def _chain(self, name: str | None, models: list[ModelChoice] | None
               ) -> list[tuple[str, str | None]] | None:
        """(provider, model) in order, or None for one provider without fallbacks."""
        data = self._ctx.data if isinstance(self._ctx.data, dict) else {}
        listed = _choices(data.get("models"))
        if listed:
            return [(c.provider, c.model) for c in listed]
        extra = _choices(data.get("fallbacks"))
        if extra:
            first = self._get(name or data.get("provider"))
            model = data.get("model")
            return [(first.name, model if isinstance(model, str) else None),
                    *((c.provider, c.model) for c in extra)]
        # An agent's models, unless the job chose its provider or model itself.
        if models and not (data.get("provider") or data.get("model")):
            return [(c.provider, c.model) for c in models]
        return None

    def _fallback(self, chain: list[tuple[str, str | None]]) -> Provider:
        wait = self._runtime.fallback_max_wait_s
        links = []
        for index, (name, model) in enumerate(chain):
            provider = self._get(name)
            last = index == len(chain) - 1
            links.append(ModelLink(self._limited(provider, None if last else wait),
                                   model or provider.model))
        return FallbackProvider(links, on_failure=self._model_failed)

    async def _model_failed(self, provider: str, model: str, error: ProviderError) -> None:
        self._fallbacks += 1
        await self.meter.record_failure(
            f"attempt-{self._ctx.attempt}:fallback-{self._fallbacks}", provider, model,
            str(error))

    async def _org(self) -> str | None:
        owner_of = getattr(self._ctx, "owner", None)
        owner = await owner_of() if owner_of is not None else None
        return owner.org_id if owner is not None else None

    @property
    def tools(self) -> ToolRegistry:
        return self._runtime.tools

    @property
    def agents(self) -> AgentRegistry:
        return self._runtime.agents

    async def agent_tools(self, agent: AgentDefinition) -> ToolRegistry:
        """The tools `agent` may use: the built-in ones its `tools` allow, and its MCP
        servers' (connected once per worker; one that cannot be reached is left out, and the
        job's log says so)."""
        allowed = agent.tools
        builtin = [name for name in allowed if name in self.tools] if allowed is not None \
            else None
        tools = self.tools if builtin is None else self.tools.only(builtin)
        if not agent.mcp_servers:
            return tools
        offered = await self._runtime.mcp.tools(agent.id, agent.mcp_servers, allowed,
                                                report=self._ctx.log)
        return ToolRegistry([*tools, *offered])

    @property
    def sessions(self) -> SessionStore:
        """Chat sessions' memory (seed 000), per owner."""
        return self._runtime.sessions

    @property
    def conversations(self) -> SessionStore:
        """Completion conversations' memory (seed 004), per owner."""
        return self._runtime.conversations

    @property
    def max_agent_steps(self) -> int:
        return self._runtime.max_agent_steps


def _choices(raw: Any) -> list[ModelChoice] | None:
    """A job's `models`/`fallbacks` (its input model checked them; other data is ignored)."""
    if not isinstance(raw, list) or not raw:
        return None
    try:
        return [ModelChoice.model_validate(item) for item in raw]
    except ValueError:
        return None


class Context(JobContext):
    """The context of a job run by an agentqueue worker (see the module's docs)."""

    resources: ClassVar[WorkerResources | None] = None

    def _resources(self) -> WorkerResources:
        if self.resources is None:
            raise RuntimeError("this context is not bound to a worker's resources "
                               "(WorkerResources.context_class)")
        return self.resources

    @property
    def settings(self) -> Settings:
        return self._resources().settings

    @property
    def ai(self) -> JobAi:
        ai = self.state.get("ai")
        if not isinstance(ai, JobAi):
            ai = self.state["ai"] = JobAi(self, self._resources().runtime)
        return ai

    async def owner(self) -> JobOwner | None:
        """Who the job belongs to, as its record says; None for a job without one (added to
        Redis directly, or enqueued without an owner). Never read from the job's data."""
        if OWNER not in self.state:
            self.state[OWNER] = await self._resources().runtime.owner_of(self)
        owner = self.state[OWNER]
        return None if owner is None or owner == NO_OWNER else owner

    async def usage(self) -> JobUsage:
        """Tokens and cost of the job's provider calls, over all its attempts so far."""
        return await self.ai.meter.usage()

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`await fn(*args)` as a durable step called `name`: once it has finished, a later
        run of this job (a retry, the re-run after its worker died) gets its result from the
        job's step log instead of running it again. The result must be JSON (it is stored
        as such and comes back as JSON gives it: tuples as lists). A name used again in one
        run is numbered (`name`, `name#2`, …): keep the order of steps the same from run to
        run. Names starting `provider:` or `tool:` are agentqueue's own."""
        if not name or name.startswith(RESERVED_PREFIXES):
            raise ValueError(f"invalid step name {name!r}: empty, or reserved "
                             f"({', '.join(RESERVED_PREFIXES)} are agentqueue's own)")
        return await self.ai.steps.run(name, fn, *args)

    def delta_writer(self) -> DeltaWriter:
        runtime = self._resources().runtime
        return DeltaWriter(runtime.client, runtime.prefix, self.queue, self.id, self.attempt)

    def text_stream(self, *, percent: int = 50) -> TextProgress:
        """Streamed text into the job's progress (`{"percent", "text", "streaming"}`, coalesced)
        as it arrives, and each delta at once to push subscribers (`engine.deltas`): give it to
        a provider as `on_text=`, and `await stream.close()` after."""
        return TextProgress(self, percent=percent)

    def shared(self, key: str, make: Callable[[], T],
               close: Callable[[T], Awaitable[None]] | None = None) -> T:
        """An object the worker keeps for all jobs (made once by `make`; see WorkerResources)."""
        return self._resources().shared(key, make, close)

    def validation_context(self) -> dict[str, Any]:
        return self._resources().validation_context()
