"""What each organization has spent today and this month, against its budget.

Spending is counted live in Redis, per organization per UTC day and per calendar month
(tokens, and cost in micro-dollars so `HINCRBY` keeps it exact), by every provider call that
reaches a provider (`handlers.provider_limits`): a running agent sees what the others spent a
moment ago. (The records' usage ledger is the durable account, written when each job ends; these
counters are what limits enforce, kept 3 days / 40 days.)

- At submission (`admit`): a job is refused if its organization is already at a budget, or if
  the job's own estimate (its input's size in tokens, plus `max_tokens` when it asks for
  some) would take it over a token budget. The API answers 402 with a message naming the budget.
- Before every provider call (`check`): a job whose organization has spent a budget stops
  there (the job fails, not retried, with the same message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis

from agentqueue.core.limits import LimitStore
from agentqueue.limit_rules import Budget
from agentqueue.records.views import JobOwner

_DAY_TTL_S = 3 * 24 * 3600
_MONTH_TTL_S = 40 * 24 * 3600
_MICRO = 1_000_000


class BudgetExceeded(Exception):
    """A job refused, or stopped, because its organization's budget is spent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Spend:
    day_tokens: int
    day_cost_usd: float
    month_tokens: int
    month_cost_usd: float


def estimate_tokens(data: Any) -> int:
    """A job's tokens before it runs: its input at ~4 characters a token, plus the completion
    it asks for (`max_tokens` / `maxTokens`), if any."""
    text = json.dumps(data, default=str) if not isinstance(data, str) else data
    asked = 0
    if isinstance(data, dict):
        for name in ("max_tokens", "maxTokens"):
            value = data.get(name)
            if isinstance(value, int) and value > 0:
                asked = value
    return len(text) // 4 + asked


class Budgets:
    def __init__(self, client: redis.Redis, limits: LimitStore) -> None:
        self.client = client
        self.limits = limits
        self.namespace = f"agentqueue:{limits.prefix}:spend"

    def _keys(self, org_id: str, now: datetime | None = None) -> tuple[str, str]:
        now = now or datetime.now(UTC)
        return (f"{self.namespace}:{org_id}:d:{now:%Y%m%d}",
                f"{self.namespace}:{org_id}:m:{now:%Y%m}")

    async def budget(self, org_id: str) -> Budget:
        return (await self.limits.rules()).budget_of(org_id)

    async def spent(self, org_id: str) -> Spend:
        day, month = self._keys(org_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(day, "tokens", "micro_usd")
            pipe.hmget(month, "tokens", "micro_usd")
            (day_t, day_c), (month_t, month_c) = await pipe.execute()
        return Spend(int(day_t or 0), int(day_c or 0) / _MICRO,
                     int(month_t or 0), int(month_c or 0) / _MICRO)

    async def add(self, org_id: str, tokens: int, cost_usd: float) -> None:
        """Count a provider call's usage for `org_id`."""
        if tokens <= 0 and cost_usd <= 0:
            return
        day, month = self._keys(org_id)
        micro = round(cost_usd * _MICRO)
        async with self.client.pipeline(transaction=False) as pipe:
            for key, ttl in ((day, _DAY_TTL_S), (month, _MONTH_TTL_S)):
                pipe.hincrby(key, "tokens", tokens)
                pipe.hincrby(key, "micro_usd", micro)
                pipe.expire(key, ttl)
            await pipe.execute()

    async def check(self, org_id: str, *, more_tokens: int = 0) -> None:
        """Raise BudgetExceeded if `org_id` has spent a budget, or `more_tokens` would take it
        over a token budget."""
        budget = await self.budget(org_id)
        if not budget.limited:
            return
        spent = await self.spent(org_id)
        over = _over(budget, spent, more_tokens)
        if over is not None:
            raise BudgetExceeded(f"organization {org_id} {over}")

    async def admit(self, owner: JobOwner, data: Any) -> None:
        """At submission: refuse a job its organization's budget cannot take."""
        if owner.org_id is None:
            return
        await self.check(owner.org_id, more_tokens=estimate_tokens(data))

    async def report(self, org_id: str) -> dict[str, Any]:
        """Budget, spent and what is left, per period (seconds until it resets included)."""
        budget = await self.budget(org_id)
        spent = await self.spent(org_id)
        now = datetime.now(UTC)
        day_end = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp() + 86_400
        month_end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1,
                             tzinfo=UTC).timestamp()

        def period(tokens: int, cost: float, spent_t: int, spent_c: float,
                   end: float) -> dict[str, Any]:
            return {
                "tokens": {"limit": tokens or None, "used": spent_t,
                           "remaining": max(tokens - spent_t, 0) if tokens else None},
                "costUsd": {"limit": cost or None, "used": round(spent_c, 6),
                            "remaining": round(max(cost - spent_c, 0), 6) if cost else None},
                "resetsInSeconds": int(end - now.timestamp()),
            }

        return {
            "organizationId": org_id,
            "daily": period(budget.daily_tokens, budget.daily_cost_usd, spent.day_tokens,
                            spent.day_cost_usd, day_end),
            "monthly": period(budget.monthly_tokens, budget.monthly_cost_usd,
                              spent.month_tokens, spent.month_cost_usd, month_end),
        }


def _over(budget: Budget, spent: Spend, more_tokens: int) -> str | None:
    """Which budget `spent` (plus `more_tokens`) is at or over, as words; None if none."""
    checks = (
        ("daily token budget", budget.daily_tokens, spent.day_tokens),
        ("monthly token budget", budget.monthly_tokens, spent.month_tokens),
    )
    for name, limit, used in checks:
        if limit and used >= limit:
            return f"is over its {name} ({used} of {limit} tokens used)"
        if limit and used + more_tokens > limit:
            return (f"would go over its {name} ({used} of {limit} tokens used, this job needs "
                    f"about {more_tokens})")
    costs = (
        ("daily cost budget", budget.daily_cost_usd, spent.day_cost_usd),
        ("monthly cost budget", budget.monthly_cost_usd, spent.month_cost_usd),
    )
    for name, limit_usd, used_usd in costs:
        if limit_usd and used_usd >= limit_usd:
            return f"has spent its {name} (${used_usd:.4f} of ${limit_usd:.4f})"
    return None
