"""`webhook` jobs on the `webhooks` queue (seed 003): deliver a JSON payload by HTTP POST.

A 2xx answer completes the job; a 5xx, 408, 429 or a network error is retried with the queue's
backoff (5 attempts); any other 4xx fails at once, since sending it again cannot help. With
WEBHOOK_SECRET set, each delivery carries `X-Agentqueue-Signature: sha256=<hmac of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field

from agentqueue.engine.worker import JobContext, PermanentJobError, WorkerRuntime
from agentqueue.handlers.ai_runtime import parse_input
from agentqueue.timefmt import iso_now

WEBHOOK = "webhook"
_RETRYABLE = {408, 425, 429}


class WebhookInput(BaseModel):
    url: AnyHttpUrl
    event: str | None = Field(None, max_length=200)
    payload: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeoutSeconds: float = Field(10.0, gt=0, le=60)


class WebhookHandler:
    def __init__(self, *, secret: str | None = None, client: httpx.AsyncClient | None = None):
        self.secret = secret
        self.client = client or httpx.AsyncClient(follow_redirects=False)

    def register(self, worker: WorkerRuntime) -> None:
        worker.register(WEBHOOK, self.deliver)
        worker.on_shutdown(self.client.aclose)

    async def deliver(self, ctx: JobContext) -> dict[str, Any]:
        data = parse_input(WebhookInput, ctx)
        body = json.dumps({"event": data.event, "payload": data.payload}).encode()
        headers = {
            **data.headers,
            "Content-Type": "application/json",
            "X-Agentqueue-Delivery": f"{ctx.queue}:{ctx.id}",
            "X-Agentqueue-Attempt": str(ctx.attempt),
        }
        if data.event:
            headers["X-Agentqueue-Event"] = data.event
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Agentqueue-Signature"] = f"sha256={digest}"
        try:
            answer = await self.client.post(str(data.url), content=body, headers=headers,
                                            timeout=data.timeoutSeconds)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"webhook to {data.url.host} failed: {exc}") from exc
        if answer.status_code >= 500 or answer.status_code in _RETRYABLE:
            raise ConnectionError(f"webhook answered HTTP {answer.status_code}; will retry")
        if answer.status_code >= 400:
            raise PermanentJobError(f"webhook answered HTTP {answer.status_code}; not retried")
        await ctx.progress(100)
        return {"status": answer.status_code, "deliveredAt": iso_now(), "attempt": ctx.attempt}
