"""`render`: the Prometheus text of every process's metrics, read from Redis at scrape time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis.asyncio as redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from agentqueue.engine.queue import JobQueue
from agentqueue.metrics.aggregate import (
    TIME_BUCKETS_S,
    WORKER_TTL_S,
    live_workers,
    metrics_key,
)

HELP = {
    "agentqueue_jobs_enqueued": "Jobs accepted, by queue and type.",
    "agentqueue_jobs_completed": "Jobs completed, by queue and type.",
    "agentqueue_jobs_failed": "Jobs failed for good (attempts spent or not retryable).",
    "agentqueue_jobs_retried": "Failed runs that will be retried, by queue and type.",
    "agentqueue_jobs_retried_by_hand": "Jobs retried by a person (HTTP, Python, CLI).",
    "agentqueue_jobs_stalled": "Jobs whose worker stopped, put back in the queue.",
    "agentqueue_job_wait_seconds": "Time from due to taken by a worker (first attempt).",
    "agentqueue_job_run_seconds": "Time a run took, by queue, type and outcome.",
    "agentqueue_provider_calls": "Provider calls, by provider and model.",
    "agentqueue_provider_call_seconds": "Provider call latency, by provider and model.",
    "agentqueue_provider_tokens": "Tokens, by provider, model and direction (input/output).",
    "agentqueue_provider_cost_usd": "Cost in USD, by provider and model.",
    "agentqueue_rate_limit_waits": "Jobs put back to wait by a rate limit, by limit.",
    "agentqueue_redis_errors": "Requests answered 503 because Redis was unavailable.",
    "agentqueue_sql_errors": "Requests answered 503 because the records database was "
                             "unavailable.",
}


class _Snapshot:
    """A collector that yields metric families read beforehand (prometheus-client collects
    synchronously; Redis is read asynchronously)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


async def render(client: redis.Redis, prefix: str, queues: Mapping[str, JobQueue]) -> bytes:
    """Queue counts by state, paused queues and live workers (read now), and the counters and
    histograms every process has added to Redis."""
    families: list[Metric] = []
    jobs = GaugeMetricFamily("agentqueue_jobs", "Jobs in Redis, by queue and state.",
                             labels=["queue", "state"])
    paused = GaugeMetricFamily("agentqueue_queue_paused", "1 if the queue is paused.",
                               labels=["queue"])
    for name, queue in sorted(queues.items()):
        for state, n in (await queue.counts()).items():
            jobs.add_metric([name, state], n)
        paused.add_metric([name], 1 if await queue.is_paused() else 0)
    families += [jobs, paused, await _workers(client, prefix, queues)]
    stored = await client.hgetall(metrics_key(prefix))
    families += _stored_families(stored.items())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


async def _workers(client: redis.Redis, prefix: str, queues: Iterable[str]) -> Metric:
    alive: dict[str, int] = {**dict.fromkeys(queues, 0), **await live_workers(client, prefix)}
    family = GaugeMetricFamily("agentqueue_workers", "Worker processes serving the queue "
                               f"(heard from within {WORKER_TTL_S:.0f} s).", labels=["queue"])
    for queue, n in sorted(alive.items()):
        family.add_metric([queue], n)
    return family


def _stored_families(fields: Iterable[tuple[Any, Any]]) -> list[Metric]:
    counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    histograms: dict[str, dict[tuple[tuple[str, str], ...], dict[str, float]]] = {}
    for field, value in fields:
        name, labels, part = json.loads(field)
        key = tuple(sorted(labels.items()))
        if part:
            histograms.setdefault(name, {}).setdefault(key, {})[part] = float(value)
        else:
            counters.setdefault(name, {})[key] = float(value)
    families: list[Metric] = []
    for name, series in sorted(counters.items()):
        base = name.removesuffix("_total")
        names = [k for k, _ in next(iter(series))]
        counter = CounterMetricFamily(base, HELP.get(base, base), labels=names)
        for key, value in sorted(series.items()):
            counter.add_metric([v for _, v in key], value)
        families.append(counter)
    for name, parted in sorted(histograms.items()):
        names = [k for k, _ in next(iter(parted))]
        histogram = HistogramMetricFamily(name, HELP.get(name, name), labels=names)
        for key, parts in sorted(parted.items()):
            histogram.add_metric([v for _, v in key], _cumulative(parts),
                                 sum_value=parts.get("sum", 0.0))
        families.append(histogram)
    return families


def _cumulative(parts: dict[str, float]) -> list[tuple[str, float]]:
    """Cumulative buckets over every bound (a bucket no observation fell in is still shown:
    `histogram_quantile` needs the same bounds in every series)."""
    seen = {float(p[3:]): n for p, n in parts.items() if p.startswith("le=") and p != "le=+Inf"}
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for bound in sorted(set(TIME_BUCKETS_S) | set(seen)):
        running += seen.get(bound, 0.0)
        buckets.append((repr(bound), running))
    buckets.append(("+Inf", parts.get("count", running + parts.get("le=+Inf", 0.0))))
    return buckets
