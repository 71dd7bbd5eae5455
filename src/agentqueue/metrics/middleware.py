"""`JobMetrics`: the worker middleware that counts jobs and times them."""

from __future__ import annotations

import time
from typing import Any

from agentqueue.engine.context import JobContext
from agentqueue.engine.middleware import Middleware, WorkerInfo
from agentqueue.metrics.aggregate import MetricsRecorder

_STARTED = "metrics.started"


class JobMetrics(Middleware):
    """Completed, failed and retried jobs by queue and type; time waiting and running; the
    workers alive (a heartbeat each, which `GET /metrics` counts)."""

    def __init__(self, recorder: MetricsRecorder) -> None:
        self.recorder = recorder
        self._queues: list[str] = []

    async def startup(self, worker: WorkerInfo) -> None:
        self._queues.append(worker.queue)
        self.recorder.worker_started(worker.queue)

    async def shutdown(self) -> None:
        while self._queues:
            await self.recorder.worker_stopped(self._queues.pop())

    async def before_job(self, ctx: JobContext) -> None:
        ctx.state[_STARTED] = time.monotonic()
        job = ctx.job
        due_ms = (job.timestamp or 0) + int((job.opts or {}).get("delay") or 0)
        if job.processedOn and due_ms and ctx.attempt == 1:  # a retry's wait is its backoff
            self.recorder.observe("agentqueue_job_wait_seconds", self._labels(ctx),
                                  max(0.0, (job.processedOn - due_ms) / 1000))

    async def after_job(self, ctx: JobContext, result: Any) -> None:
        self.recorder.count("agentqueue_jobs_completed_total", self._labels(ctx))
        self._ran(ctx, "completed")

    async def on_failure(self, ctx: JobContext, error: BaseException, will_retry: bool) -> None:
        name = "agentqueue_jobs_retried_total" if will_retry else "agentqueue_jobs_failed_total"
        self.recorder.count(name, self._labels(ctx))
        self._ran(ctx, "retried" if will_retry else "failed")

    async def on_stalled(self, queue: str, job_ids: list[str]) -> None:
        self.recorder.count("agentqueue_jobs_stalled_total", {"queue": queue}, len(job_ids))

    def _ran(self, ctx: JobContext, outcome: str) -> None:
        started = ctx.state.get(_STARTED)
        if isinstance(started, float):
            self.recorder.observe("agentqueue_job_run_seconds",
                                  {**self._labels(ctx), "outcome": outcome},
                                  time.monotonic() - started)

    @staticmethod
    def _labels(ctx: JobContext) -> dict[str, str]:
        return {"queue": ctx.queue, "type": ctx.name}
