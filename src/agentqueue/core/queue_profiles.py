"""Each queue's job defaults (attempts, backoff, retention), as its seed gives them."""

from __future__ import annotations

import dataclasses

from agentqueue.config import Settings
from agentqueue.engine.queue import QueueDefaults

HOUR, DAY, WEEK = 3600, 86_400, 604_800


def queue_defaults(settings: Settings, queue: str) -> QueueDefaults:
    """Each queue's attempts, backoff and retention, as its seed says.

    QUEUE_ATTEMPTS, QUEUE_BACKOFF_MS, QUEUE_KEEP_COMPLETED and QUEUE_KEEP_FAILED, when set,
    apply to every queue.
    """
    s = settings
    profiles = {
        # seed 000: 3 attempts from 2 s, the last 100 completed and 100 failed
        s.agent_queue_name: QueueDefaults(3, 2000, 100, 100),
        # seed 003: 3 attempts (webhooks 5) from 2 s; completed kept 1 h, failed 7 days
        s.ai_jobs_queue_name: QueueDefaults(3, 2000, 1000, 5000, HOUR, WEEK),
        s.webhooks_queue_name: QueueDefaults(5, 2000, 1000, 5000, HOUR, WEEK),
        # seed 004: 3 attempts from 5 s, the last 100 completed and 500 failed
        s.ai_tasks_queue_name: QueueDefaults(3, 5000, 100, 500),
        # seed 004's email queue: as its ai-tasks queue
        s.email_queue_name: QueueDefaults(3, 5000, 100, 500),
        # seed 002: 3 attempts from 2 s; completed 24 h / 1000, failed 7 days / 5000
        s.agent_tasks_queue_name: QueueDefaults(3, 2000, 1000, 5000, DAY, WEEK),
    }
    overrides = {
        field: getattr(s, setting)
        for field, setting in (("attempts", "job_attempts"), ("backoff_ms", "job_backoff_ms"),
                               ("keep_completed", "keep_completed"),
                               ("keep_failed", "keep_failed"))
        if setting in s.model_fields_set
    }
    return dataclasses.replace(profiles.get(queue, QueueDefaults()), **overrides)
