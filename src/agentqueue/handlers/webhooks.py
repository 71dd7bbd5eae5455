"""`webhook` jobs on the `webhooks` queue (seed 003): deliver a JSON payload by HTTP POST.

A 2xx answer completes the job; a 5xx, 408, 429 or a network error is retried with the queue's
backoff (5 attempts); any other 4xx fails at once, since sending it again cannot help. With
WEBHOOK_SECRET set, each delivery carries `X-Agentqueue-Signature: sha256=<hmac of the body>`.

The destination is the tenant's choice, so it is guarded: only public addresses (unless
WEBHOOK_ALLOWED_NETWORKS allows more), checked for every address the name resolves to, and the
connection goes to a checked address (`agentqueue.net.pinned`). Failures read the same whatever
the network said, so a delivery cannot be used to tell open ports from closed ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import AnyHttpUrl, BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from agentqueue.config import Settings
from agentqueue.context import Context
from agentqueue.engine.worker import JobContext, PermanentJobError
from agentqueue.handlers.builtin import webhooks_queue
from agentqueue.net.destinations import DestinationNotAllowed, DestinationPolicy
from agentqueue.net.headers import header_problem
from agentqueue.registry import JobRegistry
from agentqueue.timefmt import iso_now

if TYPE_CHECKING:
    from agentqueue.net.pinned import Resolver

log = logging.getLogger(__name__)

WEBHOOK = "webhook"
_RETRYABLE = {408, 425, 429}

# The types this module defines, as a user defines theirs (see handlers.builtin).
jobs = JobRegistry()


class WebhookInput(BaseModel):
    url: AnyHttpUrl = Field(description="http(s) URL of a public host, or of a network "
                                        "WEBHOOK_ALLOWED_NETWORKS allows")
    event: str | None = Field(None, max_length=200)
    payload: Any = None
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="X-* headers and Authorization, User-Agent, Accept, Accept-Language, "
                    "Idempotency-Key; not X-Agentqueue-*, X-Forwarded-* or hop-by-hop ones",
    )
    timeoutSeconds: float = Field(10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _public_destination(cls, url: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
        return allowed_destination(url, info)

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        problem = header_problem(headers)
        if problem:
            raise PydanticCustomError("header_not_allowed", problem)
        return headers


def allowed_destination(url: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
    """A field validator's check of a tenant's URL. At the API (which passes its settings):
    refuse what is internal without resolving. The worker checks every resolved address again
    when it connects."""
    settings = (info.context or {}).get("settings")
    if settings is not None and url.host:
        policy = DestinationPolicy.from_setting(settings.webhook_allowed_networks)
        try:
            policy.check_host(url.host)
        except DestinationNotAllowed as exc:
            raise PydanticCustomError("destination_not_allowed", str(exc)) from None
    return url


class WebhookSender:
    """What every delivery of a worker shares: the signing secret and a client that connects
    only to allowed destinations."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        policy: DestinationPolicy | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        # httpx (~40 ms to import) loads with the first delivery's sender, not at start: the
        # API imports this module for WebhookInput.
        from agentqueue.net.pinned import pinned_client, system_resolver

        self.secret = secret
        self.client = pinned_client(policy or DestinationPolicy(),
                                    resolver=resolver or system_resolver)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSender:
        return cls(secret=settings.secret("webhook_secret"),
                   policy=DestinationPolicy.from_setting(settings.webhook_allowed_networks))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver(self, ctx: JobContext, data: WebhookInput) -> dict[str, Any]:
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
        status = await self.post(ctx, str(data.url), body, headers, data.timeoutSeconds)
        # Nothing between the delivery and the return: a worker killed after the receiver
        # answered and before Redis marks the job completed delivers it again, so that window
        # is kept to the one completing round trip (the record shows 100 % on completion).
        return {"status": status, "deliveredAt": iso_now(), "attempt": ctx.attempt}

    async def post(self, ctx: JobContext, url: str, body: bytes, headers: dict[str, str],
                   timeout_s: float) -> int:
        """POST `body` to an allowed destination; its 2xx status, or the job's failure (retried
        on 5xx, 408, 425, 429 and network errors; not on other 4xx)."""
        import httpx  # already loaded by the client (see __init__)

        host = httpx.URL(url).host
        try:
            # timeoutSeconds bounds the whole delivery, a receiver dripping bytes included.
            async with asyncio.timeout(timeout_s):
                async with self.client.stream("POST", url, content=body, headers=headers,
                                              timeout=timeout_s) as answer:
                    status = answer.status_code  # the body is never read
        except DestinationNotAllowed as exc:
            raise PermanentJobError(f"webhook delivery refused: {exc}") from None
        except (httpx.HTTPError, TimeoutError) as exc:
            # The cause goes to the operator's log only: refused, reset, timed out and garbled
            # answers read the same to the tenant, so port state does not show.
            log.info("webhook %s:%s to %s failed: %s %s", ctx.queue, ctx.id, host,
                     type(exc).__name__, exc)
            raise _retry_or_give_up(ctx, f"webhook delivery to {host} failed: no valid HTTP "
                                         f"answer within {timeout_s:g} s (could not "
                                         "connect, connection lost or timed out)") from None
        if status >= 500 or status in _RETRYABLE:
            raise _retry_or_give_up(ctx, f"webhook answered HTTP {status}")
        if status >= 400:
            raise PermanentJobError(f"webhook answered HTTP {status}; not retried")
        return status


SENDER = "webhook-sender"


@jobs.job(WEBHOOK, queue=webhooks_queue)
async def webhook(ctx: Context, data: WebhookInput) -> dict[str, Any]:
    """Deliver with the worker's sender (made from the settings on the first delivery)."""
    sender = ctx.shared(SENDER, lambda: WebhookSender.from_settings(ctx.settings),
                        WebhookSender.aclose)
    return await sender.deliver(ctx, data)


def _retry_or_give_up(ctx: JobContext, reason: str) -> Exception:
    attempts = int(ctx.job.opts.get("attempts") or 1)
    if ctx.attempt >= attempts:
        return PermanentJobError(f"{reason}; gave up after {ctx.attempt} attempt"
                                 f"{'s' if ctx.attempt > 1 else ''}")
    return ConnectionError(f"{reason}; will retry (attempt {ctx.attempt} of {attempts})")
