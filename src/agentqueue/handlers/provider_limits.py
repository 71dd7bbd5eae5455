"""Provider calls under the limits every worker process shares: requests and tokens per minute
per provider model, the pause a provider's 429 asks for, and the organization's budget.

`LimitedProvider` wraps the provider one job uses (inside the metering wrapper, so a reply
replayed from an earlier attempt costs nothing here). For each call:
1. the budget: a job whose organization has spent a budget stops (`BudgetStop`, not retried);
2. the model's windows: one request, and the call's estimated tokens (its prompt at ~4
   characters a token, plus `max_tokens`), are reserved together; while either window is full,
   or the model is paused, the call waits for it;
3. the call; a 429 pauses the model for every process for its `Retry-After` (1 s when it does
   not say), gives the reservation back and tries again: the job's attempt is not spent;
4. the reservation is settled with the tokens really used, and they and their cost are added
   to the organization's spending.

A link of a model fallback chain that is not the last (`max_wait_s` set) waits at most that long
in all, for its windows, a pause or a 429's Retry-After: past it, the call fails with a 429 at
once (a longer Retry-After still pauses the model for everyone) and the chain asks its next model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agentqueue.ai.pricing import PriceTable
from agentqueue.ai.providers.base import Provider, ProviderError, TextCallback
from agentqueue.ai.types import ChatMessage, EmbeddingResult, ProviderReply, ToolSpec, Usage
from agentqueue.core.budgets import BudgetExceeded, Budgets
from agentqueue.core.limits import LimitStore
from agentqueue.engine.context import PermanentJobError
from agentqueue.engine.rate_limit import Window, WindowCounters

log = logging.getLogger("agentqueue.limits")

# The completion a call that names no `max_tokens` is assumed to ask for.
DEFAULT_COMPLETION_ESTIMATE = 256
DEFAULT_PAUSE_S = 1.0
# A provider that keeps answering 429 fails the attempt after this many pauses.
MAX_PAUSES = 20
_MINUTE_MS = 60_000
_RECHECK_MS = 500


class BudgetStop(PermanentJobError):
    """The job's organization spent its budget: the job stops at this provider call."""


OrgOf = Callable[[], Awaitable[str | None]]


class LimitedProvider:
    def __init__(self, inner: Provider, *, limits: LimitStore, counters: WindowCounters,
                 budgets: Budgets | None, prices: PriceTable, org_of: OrgOf,
                 max_wait_s: float | None = None) -> None:
        self.inner = inner
        # None: wait as long as the limits ask; else give up (a 429) past this many seconds.
        self.max_wait_s = max_wait_s
        self.name = inner.name
        self.model = inner.model
        self.limits = limits
        self.counters = counters
        self.budgets = budgets
        self.prices = prices
        self.org_of = org_of

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
        def estimate() -> int:  # only a tokens-per-minute limit needs it
            prompt = sum(len(m.content) + len(json.dumps([c.model_dump() for c in m.tool_calls]))
                         for m in messages) + len(json.dumps([t.model_dump() for t in tools]))
            return prompt // 4 + (max_tokens or DEFAULT_COMPLETION_ESTIMATE)

        async def call() -> tuple[ProviderReply, str, Usage]:
            reply = await self.inner.chat(
                messages, tools, model=model, max_tokens=max_tokens, temperature=temperature,
                json_schema=json_schema, on_text=on_text)
            return reply, reply.model, reply.usage

        return await self._limited(model or self.model, estimate, call)

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        def estimate() -> int:
            return sum(len(t) for t in texts) // 4 + 1

        async def call() -> tuple[EmbeddingResult, str, Usage]:
            result = await self.inner.embed(texts, model=model)
            return result, result.model, result.usage

        return await self._limited(model or self.model, estimate, call)

    async def _limited(self, model: str, estimate: Callable[[], int],
                       call: Callable[[], Awaitable[tuple[Any, str, Usage]]]) -> Any:
        rules = await self.limits.rules()
        # The job's organization (a records read) only when some budget is set at all.
        budgeted = self.budgets is not None and (rules.default_budget.limited
                                                 or bool(rules.budgets))
        org = await self.org_of() if budgeted else None
        if org is not None and self.budgets is not None:
            try:
                await self.budgets.check(org)
            except BudgetExceeded as exc:
                raise BudgetStop(f"stopped: {exc.message}") from None
        pause = self.counters.key("model", self.name, model, "paused")
        give_up = None if self.max_wait_s is None else time.monotonic() + self.max_wait_s
        for _ in range(MAX_PAUSES):
            windows = await self._windows(model, estimate)
            await self._reserve(model, windows, pause, give_up)
            try:
                result, used_model, usage = await call()
            except ProviderError as exc:
                await self._give_back(windows)
                if exc.status_code != 429:
                    raise
                seconds = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_PAUSE_S
                log.warning("%s/%s answered 429: pausing the model for %.1f s", self.name,
                            model, seconds)
                await self.counters.pause(pause, max(int(seconds * 1000), 1))
                if give_up is not None and time.monotonic() + seconds > give_up:
                    raise
                continue
            await self._settle(windows, usage)
            if org is not None and self.budgets is not None:
                cost = self.prices.cost(used_model, usage).usd
                await self.budgets.add(org, usage.input_tokens + usage.output_tokens, cost)
            return result
        raise ProviderError(f"{self.name}/{model} kept answering 429 after {MAX_PAUSES} pauses",
                            status_code=429)

    async def _reserve(self, model: str, windows: list[Window], pause: str,
                       give_up: float | None = None) -> None:
        """Wait until every window has room (and no pause is on), and take it; past `give_up`
        (a monotonic time), fail with a 429 instead."""
        said = False
        for _ in range(1_000_000):
            wait_ms = await self.counters.take(windows, [pause])
            if not wait_ms:
                return
            if give_up is not None and time.monotonic() + wait_ms / 1000 > give_up:
                raise ProviderError(
                    f"{self.name}/{model} is rate limited for {wait_ms / 1000:.1f} s more, "
                    f"longer than a fallback waits ({self.max_wait_s:g} s)", status_code=429,
                    retry_after_s=wait_ms / 1000)
            if not said:
                log.info("A call to %s/%s waits for its rate limit (%d ms at most)",
                         self.name, model, wait_ms)
                said = True
            # Settled reservations free room before the window ends: look again soon.
            await asyncio.sleep(min(wait_ms, _RECHECK_MS) / 1000)

    async def _windows(self, model: str, estimate: Callable[[], int]) -> list[Window]:
        rate = (await self.limits.rules()).model_rate(self.name, model)
        if rate is None:
            return []
        windows = []
        if rate.rpm:
            windows.append(Window(self.counters.key("model", self.name, model, "rpm"),
                                  rate.rpm, _MINUTE_MS, 1))
        if rate.tpm:
            windows.append(Window(self.counters.key("model", self.name, model, "tpm"),
                                  rate.tpm, _MINUTE_MS, estimate()))
        return windows

    async def _give_back(self, windows: list[Window]) -> None:
        """A call that failed used no tokens (the request itself still counts)."""
        for window in windows:
            if window.key.endswith(":tpm"):
                await self.counters.settle(window.key, -window.cost)

    async def _settle(self, windows: list[Window], usage: Usage) -> None:
        for window in windows:
            if window.key.endswith(":tpm"):
                used = usage.input_tokens + usage.output_tokens
                await self.counters.settle(window.key, used - window.cost)

    async def aclose(self) -> None:
        """The inner provider is shared by many jobs: its owner closes it."""
