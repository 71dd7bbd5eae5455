"""Usage accounting and call reuse for one job, across all of its attempts.

`MeteredProvider` wraps the provider a job uses:
- every call that reaches the provider is written once to the job's usage ledger (tokens and
  cost), so the job's usage is the sum over all attempts without counting any call twice;
- every call is a durable step of the job (`engine.steps`: `provider:chat`, `provider:chat#2`,
  …, fingerprinted by its request), so a later run of the job that makes the same request at
  the same point gets the stored reply instead of paying for it a second time.

A reply counts as accepted once the job's next step begins: it went on with that reply. The
last reply of a run is never kept: either the run succeeds (nothing to retry), or it failed,
perhaps because of that very reply (JSON that does not fit the schema, an empty answer), and
then replaying it would fail every retry the same way. The price: a run that fails for another
reason after its last reply (its worker killed, say) pays for that one call again on retry.
Every call that reached the provider is counted, the rejected ones too: they were paid for.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as redis
from pydantic import BaseModel

from agentqueue import tracing
from agentqueue.ai.pricing import PriceTable
from agentqueue.ai.providers.base import Provider, TextCallback
from agentqueue.ai.types import ChatMessage, EmbeddingResult, ProviderReply, ToolSpec, Usage
from agentqueue.engine.channel import CommandChannel
from agentqueue.engine.connection import transaction
from agentqueue.engine.steps import StepLog, fingerprint
from agentqueue.metrics.aggregate import MetricsRecorder

LEDGER_TTL_S = 30 * 24 * 3600


class CallRecord(BaseModel):
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    priced: bool
    # A model of a fallback chain that failed (no tokens): what went wrong, and when, so a
    # result can list the models in the order they were tried.
    error: str | None = None
    at: float = 0.0


class ModelTried(BaseModel):
    """One model a job asked: how many calls it answered, and its last failure."""

    provider: str
    model: str
    answered: int = 0
    error: str | None = None


class JobUsage(BaseModel):
    """A job's usage over every provider call of every attempt."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unpriced_models: list[str] = []
    # Every model asked, in the order first asked (failures of fallback chains included).
    tried: list[ModelTried] = []

    @property
    def fell_back(self) -> bool:
        """Whether some model failed, or more than one answered: worth showing the list."""
        return len(self.tried) > 1 or any(t.error for t in self.tried)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def totals(self) -> tuple[int, int, float]:
        """(input tokens, output tokens, cost in USD), as job records store them."""
        return self.input_tokens, self.output_tokens, self.cost_usd

    @property
    def cost_cents(self) -> float:
        return round(self.cost_usd * 100, 6)

    def to_result(self) -> dict[str, Any]:
        """The shape job results carry."""
        out: dict[str, Any] = {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens,
            "costUsd": round(self.cost_usd, 8),
            "calls": self.calls,
        }
        if self.unpriced_models:
            out["costNote"] = (
                "no price known for " + ", ".join(self.unpriced_models) + "; counted as 0 "
                "(add it with AGENTQUEUE_PRICES_FILE or AGENTQUEUE_PRICES)"
            )
        return out


# One ledger write: the call (HSETNX: a call id is written once, whatever happens after), the
# ledger's expiry, and the ledger as the write left it, atomically and in one round trip.
_RECORD_SCRIPT = """
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HVALS', KEYS[1])
"""
_RECORD_SHA = hashlib.sha1(_RECORD_SCRIPT.encode()).hexdigest()


class JobMeter:
    """The usage ledger of one job, in Redis so any worker's retry sees it.

    Given a `CommandChannel` (the metering middleware's), its commands share the socket writes
    of every job's in one event-loop turn, instead of a pooled connection each."""

    def __init__(self, client: redis.Redis, *, prefix: str, queue: str, job_id: str,
                 channel: CommandChannel | None = None) -> None:
        base = f"agentqueue:{prefix}:{queue}"
        self.client = client
        self.channel = channel
        self.ledger_key = f"{base}:usage:{job_id}"
        self._after_write: JobUsage | None = None

    async def record(self, call_id: str, record: CallRecord) -> None:
        entry = record.model_dump_json()
        if self.channel is not None:
            ledger = await self.channel.evalsha(_RECORD_SHA, _RECORD_SCRIPT, [self.ledger_key],
                                                [call_id, entry, LEDGER_TTL_S])
        else:
            async with transaction(self.client, self.ledger_key) as pipe:
                pipe.hsetnx(self.ledger_key, call_id, entry)
                pipe.expire(self.ledger_key, LEDGER_TTL_S)
                pipe.hvals(self.ledger_key)
                *_, ledger = await pipe.execute()
        # The job's usage from now on (`usage()`) needs no read of its own.
        self._after_write = _total(ledger)

    async def record_failure(self, call_id: str, provider: str, model: str, error: str) -> None:
        """A model of a fallback chain failed: no tokens, but the attempt is in the ledger."""
        await self.record(call_id, CallRecord(
            provider=provider, model=model, input_tokens=0, output_tokens=0, cost_usd=0.0,
            priced=True, error=error, at=time.time()))

    async def usage(self) -> JobUsage:
        """The job's usage over all its attempts: as this run's last write left the ledger
        (nothing else writes it while the run holds the job), else read from it."""
        if self._after_write is not None:
            return self._after_write.model_copy(deep=True)
        return _total(await self.client.hvals(self.ledger_key))


def _total(ledger: Sequence[str | bytes]) -> JobUsage:
    """The usage of a ledger's calls."""
    total = JobUsage()
    unpriced: set[str] = set()
    calls = sorted((CallRecord.model_validate_json(item) for item in ledger),
                   key=lambda call: call.at)
    tried: dict[tuple[str, str], ModelTried] = {}
    for call in calls:
        model = tried.setdefault((call.provider, call.model),
                                 ModelTried(provider=call.provider, model=call.model))
        if call.error is not None:
            model.error = call.error
            continue
        model.answered += 1
        total.input_tokens += call.input_tokens
        total.output_tokens += call.output_tokens
        total.cost_usd += call.cost_usd
        total.calls += 1
        if not call.priced:
            unpriced.add(call.model)
    total.unpriced_models = sorted(unpriced)
    total.tried = list(tried.values())
    return total


class MeteredProvider:
    """A provider that meters and reuses calls for one attempt of one job."""

    def __init__(
        self, inner: Provider, meter: JobMeter, prices: PriceTable, *, attempt: int,
        steps: StepLog, metrics: MetricsRecorder | None = None,
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.meter = meter
        self.prices = prices
        self.attempt = attempt
        # The name its replies are remembered under: a fallback chain's `name` changes.
        self._cache_name = inner.name
        self.model = inner.model
        self.steps = steps
        self._calls = 0
        # Ledger ids are unique per run: a run resumed after an approval has the same attempt.
        self._run = uuid.uuid4().hex[:8]

    @property
    def name(self) -> str:
        """The provider that answered (a fallback chain's changes from call to call)."""
        return self.inner.name

    async def _replayed(self, kind: str, request: dict[str, Any]) -> tuple[str, str, Any]:
        """This call's step name and fingerprint, and its stored result (None: none)."""
        name = self.steps.name(f"provider:{kind}")
        asked = fingerprint({"provider": self._cache_name, "kind": kind, **request})
        await self.steps.accept()  # a new call: the run went on with the replies it has
        found = await self.steps.find(name, asked)
        return name, asked, None if found is None else found["result"]

    @contextlib.asynccontextmanager
    async def _observed(self, kind: str, model: str | None) -> AsyncIterator[dict[str, str]]:
        """A span around one real provider call, and its count and latency in the metrics,
        labelled with the model that answered (set `["model"]` in the block), as its tokens
        and cost are; the model asked for if the call failed."""
        started = time.monotonic()
        outcome = "error"
        answered = {"model": model or self.model or ""}
        with tracing.span(f"{kind} {self.name}", kind="client", attributes={
                "gen_ai.system": self.name, "gen_ai.operation.name": kind,
                "gen_ai.request.model": model or self.model}):
            try:
                yield answered
                outcome = "ok"
            finally:
                if self.metrics is not None:
                    labels = {"provider": self.inner.name, "model": answered["model"],
                              "outcome": outcome}
                    self.metrics.count("agentqueue_provider_calls_total", labels)
                    self.metrics.observe("agentqueue_provider_call_seconds",
                                         {"provider": self.inner.name, "model": labels["model"]},
                                         time.monotonic() - started)

    async def _record(self, model: str, usage: Usage) -> None:
        self._calls += 1
        cost = self.prices.cost(model, usage)
        if self.metrics is not None:
            # The provider that answered: a fallback chain's changes from call to call.
            labels = {"provider": self.inner.name, "model": model}
            for direction, tokens in (("input", usage.input_tokens),
                                      ("output", usage.output_tokens)):
                self.metrics.count("agentqueue_provider_tokens_total",
                                   {**labels, "direction": direction}, tokens)
            self.metrics.count("agentqueue_provider_cost_usd_total", labels, cost.usd)
        await self.meter.record(
            f"attempt-{self.attempt}:{self._run}:call-{self._calls}",
            CallRecord(
                provider=self.inner.name, model=model, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, cost_usd=cost.usd, priced=cost.priced,
                at=time.time(),
            ),
        )

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
        name, asked, stored = await self._replayed("chat", {
            "model": model or self.model,
            "messages": [m.model_dump() for m in messages],
            "tools": [t.model_dump() for t in tools],
            "max_tokens": max_tokens, "temperature": temperature, "json_schema": json_schema,
        })
        if stored is not None:
            reply = ProviderReply.model_validate(stored)
            if on_text is not None and reply.content:
                await on_text(reply.content)
            # Already paid for (and counted) by an earlier attempt.
            return reply.model_copy(update={"usage": Usage()})
        async with self._observed("chat", model) as answered:
            reply = await self.inner.chat(
                messages, tools, model=model, max_tokens=max_tokens, temperature=temperature,
                json_schema=json_schema, on_text=on_text,
            )
            answered["model"] = reply.model
        await self._record(reply.model, reply.usage)
        await self.steps.record(name, reply.model_dump(mode="json"), kind="provider", asked=asked,
                                accepted=False, provider=self.name, model=reply.model)
        return reply

    async def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        name, asked, stored = await self._replayed("embed", {"model": model or "",
                                                             "texts": texts})
        if stored is not None:
            return EmbeddingResult.model_validate(stored).model_copy(
                update={"usage": Usage()}
            )
        async with self._observed("embeddings", model) as answered:
            result = await self.inner.embed(texts, model=model)
            answered["model"] = result.model
        await self._record(result.model, result.usage)
        await self.steps.record(name, result.model_dump(mode="json"), kind="provider",
                                asked=asked, accepted=False, provider=self.name,
                                model=result.model)
        return result

    async def aclose(self) -> None:
        """The inner provider is shared by many jobs: it is closed by its owner, not here."""
