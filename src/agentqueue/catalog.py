"""Which queue runs each job type, and what data it accepts: one table for every API."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from agentqueue.config import Settings
from agentqueue.handlers import inputs
from agentqueue.handlers.webhooks import WebhookInput


@dataclass(frozen=True)
class JobType:
    name: str  # the BullMQ job name
    queue: str
    # The data it accepts: checked at enqueue by every API and again by the worker.
    input: type[BaseModel]


def job_types(settings: Settings) -> dict[str, JobType]:
    ai_jobs, ai_tasks = settings.ai_jobs_queue_name, settings.ai_tasks_queue_name
    return {
        t.name: t
        for t in (
            JobType("chat", settings.agent_queue_name, inputs.ChatInput),
            JobType("batch", settings.agent_queue_name, inputs.BatchInput),
            JobType("summarize", ai_jobs, inputs.SummarizeInput),
            JobType("classify", ai_jobs, inputs.ClassifyInput),
            JobType("sentiment", ai_jobs, inputs.SentimentInput),
            JobType("translate", ai_jobs, inputs.TranslateInput),
            JobType("extract", ai_jobs, inputs.ExtractInput),
            JobType("generate-completion", ai_tasks, inputs.CompletionInput),
            JobType("generate-embeddings", ai_tasks, inputs.EmbeddingsInput),
            JobType("agent-task", settings.agent_tasks_queue_name, inputs.AgentTaskInput),
            JobType("webhook", settings.webhooks_queue_name, WebhookInput),
        )
    }
