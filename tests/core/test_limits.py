"""The limits in force, against a real Redis: settings, run-time changes over them (seen by
another process's store), `null` as "no limit", reset back to the settings, and clear refusals
of bad rules; budgets count spending and refuse what would go over, naming the budget."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from agentqueue.config import Settings
from agentqueue.core.budgets import BudgetExceeded, Budgets
from agentqueue.core.limits import InvalidLimits, LimitStore
from agentqueue.limit_rules import JobRate
from agentqueue.records.views import JobOwner


def store(client: redis.Redis, prefix: str, **settings: object) -> LimitStore:
    return LimitStore(client, Settings(QUEUE_PREFIX=prefix, **settings),  # type: ignore[call-arg]
                      refresh_s=0)


async def test_run_time_changes_override_the_settings_for_every_process(
    client: redis.Redis, prefix: str
) -> None:
    settings = {"QUEUE_RATE_LIMITS": {"agent-tasks": {"max": 100, "duration": 60000}},
                "JOB_TYPE_RATE_LIMITS": {"summarize": {"max": 5, "duration": 1000}}}
    here, there = store(client, prefix, **settings), store(client, prefix, **settings)
    await here.update({"jobTypes": {"summarize": None, "translate": {"max": 2, "duration": 10}},
                       "tenants": {"perOrg": 3}})
    rules = await there.rules()
    assert rules.job_types == {"translate": JobRate(max=2, duration=10)}  # summarize lifted
    assert rules.tenants.per_org == 3
    assert rules.queues["agent-tasks"] == JobRate(max=100, duration=60000)  # the setting

    await here.update({"queues": {"agent-tasks": {"max": 10, "duration": 1000}}})
    meta = f"{prefix}:agent-tasks:meta"
    assert await client.hmget(meta, "max", "duration") == ["10", "1000"]  # BullMQ's own

    rules = await there.reset()
    assert rules.job_types == {"summarize": JobRate(max=5, duration=1000)}
    assert rules.tenants.per_org == 0
    assert await client.hmget(meta, "max", "duration") == ["100", "60000"]


@pytest.mark.parametrize(("patch", "message"), [
    ({"tenants": {"perOrg": -1}}, "tenants.perOrg: Input should be greater than or equal to 0"),
    ({"queues": {"q": {"max": 5}}}, "queues.q.duration: Field required"),
    ({"speed": 1}, "unknown limit 'speed'; known: queues, jobTypes, models, budgets, "
                   "perOwner, tenants, defaultBudget"),
    ({"models": []}, "models: an object by name"),
])
async def test_bad_rules_are_refused_with_what_is_wrong(
    client: redis.Redis, prefix: str, patch: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidLimits) as refused:
        await store(client, prefix).update(patch)
    assert str(refused.value) == message


async def test_a_budget_refuses_what_would_go_over_and_reports_what_is_left(
    client: redis.Redis, prefix: str
) -> None:
    budgets = Budgets(client, store(client, prefix, ORG_BUDGET={"dailyTokens": 1000}))
    acme = JobOwner(user_id="alice", org_id="acme")
    await budgets.add("acme", 900, 0.01)
    await budgets.admit(acme, {"text": "x" * 100})  # ~25 tokens: fits
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.admit(acme, {"text": "x" * 100, "maxTokens": 200})
    assert refused.value.message == ("organization acme would go over its daily token budget "
                                     "(900 of 1000 tokens used, this job needs about 232)")
    await budgets.admit(JobOwner(user_id="bob", org_id="globex"), {"maxTokens": 200})
    report = await budgets.report("acme")
    assert report["daily"]["tokens"] == {"limit": 1000, "used": 900, "remaining": 100}
    assert report["monthly"]["costUsd"]["used"] == 0.01
