"""What rate limits, tenant caps and budgets say: plain models, read from settings (JSON in
the environment) and from the run-time overrides kept in Redis (`agentqueue.core.limits`).

Nothing here talks to Redis or knows a queue: settings import it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JobRate(_Rule):
    """At most `max` jobs started per `duration` milliseconds (BullMQ's limiter shape)."""

    max: int = Field(ge=1)
    duration: int = Field(ge=1, description="milliseconds")


class ModelRate(_Rule):
    """Requests and tokens per minute for one provider model (0: no limit of that kind)."""

    rpm: int = Field(0, ge=0, description="requests per minute")
    tpm: int = Field(0, ge=0, description="tokens per minute (prompt + completion)")


class TenantCaps(_Rule):
    """How many jobs of one organization, and of one user, may run at once (0: no cap)."""

    per_org: int = Field(0, ge=0, alias="perOrg")
    per_user: int = Field(0, ge=0, alias="perUser")


class Budget(_Rule):
    """What one organization may spend per UTC day and per calendar month (0: no limit)."""

    daily_tokens: int = Field(0, ge=0, alias="dailyTokens")
    monthly_tokens: int = Field(0, ge=0, alias="monthlyTokens")
    daily_cost_usd: float = Field(0.0, ge=0, alias="dailyCostUsd")
    monthly_cost_usd: float = Field(0.0, ge=0, alias="monthlyCostUsd")

    @property
    def limited(self) -> bool:
        return bool(self.daily_tokens or self.monthly_tokens or self.daily_cost_usd
                    or self.monthly_cost_usd)


class LimitRules(_Rule):
    """Every limit in force. Queue limits are BullMQ's own (the queue's meta hash), so Node
    workers honour them too; the others are ours."""

    queues: dict[str, JobRate] = {}
    job_types: dict[str, JobRate] = Field({}, alias="jobTypes")
    # The same limit for each owner (organization, or user without one).
    per_owner: JobRate | None = Field(None, alias="perOwner")
    # "provider/model", e.g. "openai/gpt-4o-mini"; "openai/*" for every model of a provider.
    models: dict[str, ModelRate] = {}
    tenants: TenantCaps = TenantCaps()
    # Every organization's budget unless it has its own.
    default_budget: Budget = Field(Budget(), alias="defaultBudget")
    budgets: dict[str, Budget] = {}

    def model_rate(self, provider: str, model: str) -> ModelRate | None:
        return self.models.get(f"{provider}/{model}") or self.models.get(f"{provider}/*")

    def budget_of(self, org_id: str) -> Budget:
        return self.budgets.get(org_id, self.default_budget)
