"""`slack-message` and `discord-message` jobs on the `webhooks` queue: a line of text posted to
a Slack or Discord incoming webhook, in the body each expects (Slack `{"text": …}`, Discord
`{"content": …}`). Delivered by the webhook sender (`handlers.webhooks`): the same destination
guard (public addresses unless WEBHOOK_ALLOWED_NETWORKS allows more, checked at submission and
at connect time) and the same retries (5xx, 429 and network errors; another 4xx fails at once).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from agentqueue.context import Context
from agentqueue.handlers.builtin import webhooks_queue
from agentqueue.handlers.webhooks import SENDER, WebhookSender, allowed_destination
from agentqueue.registry import JobRegistry
from agentqueue.timefmt import iso_now

SLACK_MESSAGE = "slack-message"
DISCORD_MESSAGE = "discord-message"
# Discord refuses content over 2,000 characters; Slack truncates text past 40,000.
DISCORD_MAX_CHARS = 2000
SLACK_MAX_CHARS = 40_000

jobs = JobRegistry()


class ChatMessageInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="the incoming webhook's URL (a public host, or one "
                                        "WEBHOOK_ALLOWED_NETWORKS allows)")
    text: str = Field(min_length=1, max_length=SLACK_MAX_CHARS)
    timeoutSeconds: float = Field(10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _public_destination(cls, url: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
        return allowed_destination(url, info)


class DiscordMessageInput(ChatMessageInput):
    text: str = Field(min_length=1, max_length=DISCORD_MAX_CHARS)


async def post_message(ctx: Context, data: ChatMessageInput, body: dict[str, Any]) -> Any:
    sender = ctx.shared(SENDER, lambda: WebhookSender.from_settings(ctx.settings),
                        WebhookSender.aclose)
    status = await sender.post(ctx, str(data.url), json.dumps(body, ensure_ascii=False).encode(),
                               {"Content-Type": "application/json"}, data.timeoutSeconds)
    return {"status": status, "deliveredAt": iso_now(), "attempt": ctx.attempt}


@jobs.job(SLACK_MESSAGE, queue=webhooks_queue)
async def slack_message(ctx: Context, data: ChatMessageInput) -> dict[str, Any]:
    return await post_message(ctx, data, {"text": data.text})


@jobs.job(DISCORD_MESSAGE, queue=webhooks_queue)
async def discord_message(ctx: Context, data: DiscordMessageInput) -> dict[str, Any]:
    return await post_message(ctx, data, {"content": data.text})
