"""The limits in force: settings, overridden at run time by what is stored in Redis.

Overrides live in one hash, `agentqueue:<prefix>:limits`, a field per rule ("queues.<name>",
"jobTypes.<type>", "models.<provider/model>", "budgets.<org>", "perOwner", "tenants",
"defaultBudget"), its value the rule's JSON or `null` for "no limit" (which also overrides a
setting). Every process reads the hash at most every `refresh_s`, so a change made over HTTP
or from Python holds everywhere within that time without a restart.

Queue limits are BullMQ's global rate limit (`max`/`duration` in the queue's meta hash, read
by `moveToActive`): Node workers and dashboards see and honour them. A change is written there
at once; a worker also writes its queue's limit there when it starts.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as redis
from pydantic import ValidationError

from agentqueue.config import Settings
from agentqueue.limit_rules import Budget, JobRate, LimitRules, ModelRate, TenantCaps
from agentqueue.records.views import JobOwner

# Field group in the hash -> (LimitRules attribute, model of one value).
_MAPS: dict[str, tuple[str, type[Any]]] = {
    "queues": ("queues", JobRate), "jobTypes": ("job_types", JobRate),
    "models": ("models", ModelRate), "budgets": ("budgets", Budget),
}
_SINGLE: dict[str, tuple[str, type[Any]]] = {
    "perOwner": ("per_owner", JobRate), "tenants": ("tenants", TenantCaps),
    "defaultBudget": ("default_budget", Budget),
}


class InvalidLimits(ValueError):
    pass


def settings_rules(settings: Settings) -> LimitRules:
    return LimitRules(
        queues=settings.queue_rate_limits, job_types=settings.job_type_rate_limits,
        per_owner=settings.owner_rate_limit, models=settings.model_rate_limits,
        tenants=TenantCaps(per_org=settings.tenant_max_active_per_org,
                           per_user=settings.tenant_max_active_per_user),
        default_budget=settings.org_budget,
    )


def limits_key(prefix: str) -> str:
    return f"agentqueue:{prefix}:limits"


def owner_key(prefix: str, queue: str, job_id: str) -> str:
    """Where a job's owner is noted for the workers' tenant limits (see `note_owner`)."""
    return f"agentqueue:{prefix}:{queue}:owner:{job_id}"


OWNER_TTL_S = 7 * 24 * 3600


class LimitStore:
    def __init__(self, client: redis.Redis, settings: Settings, *,
                 refresh_s: float | None = None) -> None:
        self.client = client
        self.prefix = settings.queue_prefix
        self.key = limits_key(self.prefix)
        self.base = settings_rules(settings)
        self.refresh_s = settings.limits_refresh_s if refresh_s is None else refresh_s
        self._cached: LimitRules | None = None
        self._read_at = 0.0

    async def rules(self) -> LimitRules:
        """The rules in force (re-read from Redis at most every `refresh_s`)."""
        now = time.monotonic()
        if self._cached is None or now - self._read_at >= self.refresh_s:
            self._cached = self._merge(await self._stored())
            self._read_at = now
        return self._cached

    async def _stored(self) -> dict[str, str]:
        # The client decodes replies (every connection is made with decode_responses).
        raw = await self.client.hgetall(self.key)
        return {str(field): str(value) for field, value in raw.items()}

    def _merge(self, stored: dict[str, str]) -> LimitRules:
        rules = self.base.model_copy(deep=True)
        for field, raw in stored.items():
            group, _, name = field.partition(".")
            value = json.loads(raw)
            if group in _MAPS and name:
                attribute, model = _MAPS[group]
                mapping = dict(getattr(rules, attribute))
                if value is None:
                    mapping.pop(name, None)
                else:
                    mapping[name] = model.model_validate(value)
                setattr(rules, attribute, mapping)
            elif group in _SINGLE and not name:
                attribute, model = _SINGLE[group]
                setattr(rules, attribute, None if value is None and attribute == "per_owner"
                        else model.model_validate(value or {}))
        return rules

    async def update(self, patch: dict[str, Any]) -> LimitRules:
        """Change some limits: `patch` has LimitRules's JSON shape, only what changes; a null
        rule means "no limit" (queue, type, model, budget: by name). Raises InvalidLimits."""
        fields: dict[str, str] = {}
        queues: dict[str, JobRate | None] = {}
        for group, value in patch.items():
            if group in _MAPS:
                if not isinstance(value, dict):
                    raise InvalidLimits(f"{group}: an object by name")
                model = _MAPS[group][1]
                for name, rule in value.items():
                    if not name or "." in name and group != "models":
                        raise InvalidLimits(f"{group}: bad name {name!r}")
                    checked = None if rule is None else _valid(model, rule, f"{group}.{name}")
                    fields[f"{group}.{name}"] = json.dumps(
                        None if checked is None else checked.model_dump(by_alias=True))
                    if group == "queues":
                        queues[name] = checked
            elif group in _SINGLE:
                model = _SINGLE[group][1]
                checked = None if value is None else _valid(model, value, group)
                fields[group] = json.dumps(
                    None if checked is None else checked.model_dump(by_alias=True))
            else:
                known = ", ".join([*_MAPS, *_SINGLE])
                raise InvalidLimits(f"unknown limit {group!r}; known: {known}")
        if fields:
            await self.client.hset(self.key, mapping=fields)  # type: ignore[arg-type]
        for queue, rate in queues.items():
            await apply_queue_limit(self.client, self.prefix, queue, rate)
        self._cached = None
        return await self.rules()

    async def reset(self) -> LimitRules:
        """Forget every run-time change: the settings hold again."""
        stored = await self._stored()
        await self.client.delete(self.key)
        self._cached = None
        for field in stored:
            group, _, name = field.partition(".")
            if group == "queues":
                await apply_queue_limit(self.client, self.prefix, name,
                                        self.base.queues.get(name))
        return await self.rules()

    async def note_owner(self, queue: str, job_id: str, owner: JobOwner) -> None:
        """While tenant limits are on, note a new job's owner in Redis (before it is queued),
        so workers deciding whether to run it need no records read: "<org>\x1f<user>"."""
        rules = await self.rules()
        if rules.per_owner is None and not (rules.tenants.per_org or rules.tenants.per_user):
            return
        await self.client.set(owner_key(self.prefix, queue, job_id),
                              f"{owner.org_id or ''}\x1f{owner.user_id}", ex=OWNER_TTL_S)

    async def apply_queue(self, queue: str) -> None:
        """Write `queue`'s limit in force to its BullMQ meta (a worker does at start). A queue
        no rule names is left as it is: a Node producer may have set its limit."""
        stored = await self.client.hget(self.key, f"queues.{queue}")
        if stored is None and queue not in self.base.queues:
            return
        await apply_queue_limit(self.client, self.prefix, queue,
                                (await self.rules()).queues.get(queue))


def _valid(model: type[Any], value: Any, where: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidLimits(f"{where}{'.' + field if field else ''}: {first['msg']}") from None


async def apply_queue_limit(client: redis.Redis, prefix: str, queue: str,
                            rate: JobRate | None) -> None:
    """BullMQ's `setGlobalRateLimit` / `removeGlobalRateLimit`, on the queue's meta hash."""
    meta = f"{prefix}:{queue}:meta"
    if rate is None:
        await client.hdel(meta, "max", "duration")
    else:
        await client.hset(meta, mapping={"max": rate.max, "duration": rate.duration})
