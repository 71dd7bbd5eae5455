"""Request and response shapes of the agent chat queue API (seed 000)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agentqueue.api.schemas.common import STRICT_INPUT, Name
from agentqueue.handlers.inputs import (
    MESSAGE_HARD_LIMIT,
    ApprovalOptions,
    HistoryEntry,
    Metadata,
)


class ProviderChoice(BaseModel):
    model_config = STRICT_INPUT

    provider: Name | None = Field(
        None, description="openai, anthropic or builtin (must be configured); default: env"
    )
    model: str | None = Field(None, max_length=200, description="the provider's default if unset")


class ChatRequest(ProviderChoice, ApprovalOptions):
    message: str = Field(min_length=1, max_length=MESSAGE_HARD_LIMIT)
    sessionId: str | None = Field(None, max_length=200)
    conversationHistory: list[HistoryEntry] | None = None
    userId: str | None = Field(None, max_length=200)
    metadata: Metadata | None = None


class BatchItem(BaseModel):
    model_config = STRICT_INPUT

    message: str = Field(min_length=1, max_length=MESSAGE_HARD_LIMIT)
    sessionId: str | None = Field(None, max_length=200)
    conversationHistory: list[HistoryEntry] | None = None


class BatchRequest(ProviderChoice):
    messages: list[BatchItem] = Field(min_length=1)
    userId: str | None = Field(None, max_length=200)
    metadata: Metadata | None = None


class QueuedResponse(BaseModel):
    success: bool = True
    jobId: str
    message: str
    statusUrl: str
    timestamp: str


class BatchQueuedResponse(QueuedResponse):
    messageCount: int


SeedStatus = Literal["waiting", "active", "completed", "failed", "delayed", "paused",
                     "awaiting_approval"]


class JobOut(BaseModel):
    id: str
    name: str
    status: SeedStatus
    progress: int | float
    partial: dict[str, Any] | None = Field(
        None, description="while the agent works: its tool steps and the answer streamed so far"
    )
    data: Any
    result: Any = None
    createdAt: str | None
    processedAt: str | None = None
    finishedAt: str | None = None
    attemptsMade: int
    failedReason: str | None = None
    approval: dict[str, Any] | None = Field(
        None, description="awaiting_approval: the tool call waiting (tool, arguments, callId, "
        "requestedAt, expiresAt, onTimeout)")


class JobResponse(BaseModel):
    success: bool = True
    job: JobOut


class JobsResponse(BaseModel):
    success: bool = True
    count: int
    jobs: list[JobOut]


class MessageResponse(BaseModel):
    success: bool = True
    message: str


class CleanResponse(MessageResponse):
    removed: int


class Stats(BaseModel):
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    paused: int
    total: int


class StatsResponse(BaseModel):
    success: bool = True
    stats: Stats
    timestamp: str


class HealthStats(BaseModel):
    waiting: int
    active: int
    completed: int
    failed: int


class HealthResponse(BaseModel):
    success: bool
    status: Literal["healthy", "unhealthy"]
    service: str = "Agent Queue"
    stats: HealthStats | None = None
    error: str | None = None
    timestamp: str
